"""Column types and SQL expressions that behave the same on SQLite and PostgreSQL.

SQLite has no time zones, no JSONB and no interval arithmetic; these small adapters hide that so the
tables, the writers and the queries are written once.
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, TypeVar

from sqlalchemy import JSON, DateTime, Float, String
from sqlalchemy.engine import Connection, Dialect
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql import expression
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.types import TypeDecorator


class _JSONDocument(TypeDecorator[Any]):
    """JSON on SQLite, JSONB on PostgreSQL (indexable, compact).

    The PostgreSQL type is looked up only when a PostgreSQL database is used: importing SQLAlchemy's
    postgresql dialect costs a read of an SQLite farm (``farm status``) about a tenth of its time.
    """

    impl = JSON
    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> Any:
        if dialect.name == "postgresql":
            from sqlalchemy.dialects.postgresql import JSONB

            return dialect.type_descriptor(JSONB())
        return dialect.type_descriptor(JSON())


JSONDocument = _JSONDocument()

E = TypeVar("E", bound=enum.StrEnum)


def utcnow() -> datetime:
    return datetime.now(UTC)


class UTCDateTime(TypeDecorator[datetime]):
    """A timezone-aware UTC timestamp on both backends.

    PostgreSQL stores ``timestamptz``; SQLite stores naive UTC text (which sorts correctly). Either way
    Python sees an aware datetime in UTC, and a naive datetime is refused rather than guessed at.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError(f"naive datetime {value!r}: farm stores timezone-aware UTC timestamps only")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def result_processor(self, dialect: Dialect, coltype: Any) -> Callable[[Any], datetime | None] | None:
        if dialect.name == "sqlite":
            # One C call per value instead of SQLAlchemy's parse plus a replace(tzinfo=...): status reads
            # convert tens of thousands of timestamps.
            return _sqlite_utc
        return super().result_processor(dialect, coltype)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None or value.tzinfo is UTC:
            return value
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _sqlite_utc(value: str | None) -> datetime | None:
    """SQLite's stored text (``2026-05-01 22:00:00.000000``, UTC by construction) as an aware datetime."""
    return None if value is None else datetime.fromisoformat(value + "+00:00")


class EnumText(TypeDecorator[E]):
    """A StrEnum stored as its value in a VARCHAR of ``length`` (a CHECK constraint lists the values).

    Native PostgreSQL enum types would need ALTER TYPE migrations for every new state; text plus a
    named CHECK constraint is portable and just as strict.
    """

    impl = String(16)
    cache_ok = True

    def __init__(self, enum_class: type[E], length: int = 16) -> None:
        super().__init__()
        self.impl = String(length)
        self.length = length
        self.enum_class = enum_class
        self._members: dict[str | None, E | None] = {member.value: member for member in enum_class}
        self._members[None] = None

    def process_bind_param(self, value: Any, dialect: Dialect) -> str | None:
        return None if value is None else self.enum_class(value).value

    def result_processor(self, dialect: Dialect, coltype: Any) -> Callable[[Any], E | None]:
        # A dict lookup, not Enum(value): status reads convert tens of thousands of these.
        members, enum_class = self._members, self.enum_class

        def to_member(value: Any) -> E | None:
            member = members.get(value)
            return member if member is not None or value is None else enum_class(value)

        return to_member

    def process_result_value(self, value: Any, dialect: Dialect) -> E | None:
        return None if value is None else self.enum_class(value)


def dialect_insert(connection: Connection) -> Callable[..., Any]:
    """The ``insert`` construct of the connection's dialect, which has ``on_conflict_do_nothing`` /
    ``on_conflict_do_update`` on both backends (imported on first use, like ``JSONDocument``'s type)."""
    if connection.dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as postgresql_insert

        return postgresql_insert
    from sqlalchemy.dialects.sqlite import insert as sqlite_insert

    return sqlite_insert


def enum_check(column: str, enum_class: type[enum.StrEnum]) -> str:
    """The SQL of the CHECK constraint that keeps ``column`` within ``enum_class``'s values."""
    values = ", ".join(f"'{member.value}'" for member in enum_class)
    return f"{column} IN ({values})"


class seconds_between(expression.FunctionElement[float]):
    """``end - start`` in seconds as a float, for aggregating render durations in SQL."""

    type = Float()
    name = "seconds_between"
    inherit_cache = True


@compiles(seconds_between, "sqlite")
def _seconds_between_sqlite(element: seconds_between, compiler: SQLCompiler, **kw: Any) -> str:
    start, end = (compiler.process(clause, **kw) for clause in element.clauses)
    return f"((julianday({end}) - julianday({start})) * 86400.0)"


@compiles(seconds_between, "postgresql")
def _seconds_between_postgresql(element: seconds_between, compiler: SQLCompiler, **kw: Any) -> str:
    start, end = (compiler.process(clause, **kw) for clause in element.clauses)
    return f"CAST(EXTRACT(EPOCH FROM ({end} - {start})) AS DOUBLE PRECISION)"
