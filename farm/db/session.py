"""Opening the database: one ``Database`` per process holds the SQL engine and the schema check.

``open_database`` is the only way in. It refuses a database written by a newer farm. Opened for writing,
it creates a missing SQLite file and migrates a fresh or older database up to this farm's schema (an
embedded SQLite file needs no separate step; ``farm db upgrade`` is the explicit path for a shared
PostgreSQL server). Opened ``read_only``, it never creates or migrates anything: a read that finds no
database, or one at another schema, says which database it read and what to do.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy import Engine
from sqlalchemy.engine import URL, Connection
from sqlalchemy.exc import DBAPIError

from farm.db import migrate
from farm.db.connect import READ_ONLY, create_sql_engine, display_url, normalise_url
from farm.db.errors import DatabaseMissing, DatabaseUnavailable, SchemaVersionError
from farm.db.retry import Retrier, RetryPolicy
from farm.db.stored_paths import DataPaths


class Database:
    """The SQL engine for one database URL.

    Writes go through ``write()``: one transaction, ``BEGIN IMMEDIATE`` on
    SQLite. Reads go through ``read()``: a snapshot that never takes the write lock.

    ``data_dir`` is the farm's data directory as this process sees it: paths under it are stored relative to
    it and read back absolute (``farm.db.stored_paths``), so the database survives the folder moving.

    ``retry``: how long the ``@transaction`` functions of ``farm.db`` ride out transient faults
    (``farm.db.retry``); ``retrier`` holds that policy and the outage clock shared by this process's threads.
    """

    def __init__(self, engine: Engine, *, data_dir: Path | None = None, retry: RetryPolicy | None = None) -> None:
        self.sql_engine = engine
        self.paths = DataPaths(data_dir)
        self.retrier = Retrier(retry or RetryPolicy())
        self.url: URL = engine.url
        self._read_engine = engine.execution_options(**{READ_ONLY: True})

    @property
    def backend(self) -> str:
        """``sqlite`` or ``postgresql``."""
        return self.sql_engine.dialect.name

    @property
    def display_url(self) -> str:
        return display_url(self.url)

    @contextmanager
    def write(self) -> Iterator[Connection]:
        """One write transaction on a Core connection: committed at the end, rolled back on error."""
        with self.sql_engine.begin() as connection:
            yield connection

    @contextmanager
    def read(self) -> Iterator[Connection]:
        """One read-only snapshot on a Core connection."""
        with self._read_engine.connect() as connection:
            with connection.begin() as transaction:
                yield connection
                transaction.rollback()

    def dispose(self) -> None:
        self.sql_engine.dispose()

    def __enter__(self) -> Database:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.dispose()

    def __repr__(self) -> str:
        return f"Database({self.display_url!r})"


def open_database(
    url: str | URL, *, read_only: bool = False, data_dir: Path | None = None, retry: RetryPolicy | None = None
) -> Database:
    """Connect to ``url`` and check its schema version; unless ``read_only``, create and migrate it as needed.

    ``postgresql://`` URLs use psycopg 3. Raises DatabaseUnavailable when the database cannot be reached,
    DatabaseMissing when ``read_only`` finds no database (or one farm never wrote to), SchemaVersionError
    when it is newer than this farm, or older and ``read_only``. ``data_dir``, ``retry``: see ``Database``.
    """
    parsed = normalise_url(url)
    try:
        engine = create_sql_engine(parsed, create=not read_only)
    except OSError as exc:
        raise DatabaseUnavailable(f"cannot create the database {display_url(parsed)}: {exc}") from exc
    try:
        _bring_up_to_date(engine, upgrade=not read_only)
    except BaseException:
        engine.dispose()
        raise
    return Database(engine, data_dir=data_dir, retry=retry)


def upgrade_database(url: str | URL, revision: str = "head") -> tuple[migrate.SchemaStatus, migrate.SchemaStatus]:
    """``farm db upgrade``: migrate the database at ``url`` to ``revision``; returns (before, after)."""
    engine = create_sql_engine(normalise_url(url))
    try:
        before = _reachable_status(engine)
        return before, migrate.upgrade(engine, revision)
    finally:
        engine.dispose()


def database_status(url: str | URL) -> migrate.SchemaStatus:
    """Where the database at ``url`` stands, without changing it (DatabaseMissing if there is no such file)."""
    engine = create_sql_engine(normalise_url(url), create=False)
    try:
        return _reachable_status(engine)
    finally:
        engine.dispose()


def _reachable_status(engine: Engine) -> migrate.SchemaStatus:
    try:
        return migrate.schema_status(engine)
    except DBAPIError as exc:
        reason = str(exc.orig).strip().splitlines()[0] if exc.orig else str(exc)
        raise DatabaseUnavailable(
            f"cannot open database {display_url(engine.url)}: {reason}; check --db / FARM_DATABASE_URL "
            "(is the server running, does the database exist, may this user connect?)"
        ) from exc


def _bring_up_to_date(engine: Engine, *, upgrade: bool) -> None:
    status = _reachable_status(engine)
    migrate.check_not_newer(status)
    if status.up_to_date:
        return
    if not upgrade and status.current is None:
        raise DatabaseMissing(
            f"database {status.url} has no farm tables: nothing was ever submitted to it; check --db / "
            "FARM_DATABASE_URL (or create the tables with `farm db upgrade`)"
        )
    if not upgrade:
        where = f"revision {status.current}"
        raise SchemaVersionError(
            f"database {status.url} is at {where}; this farm needs {status.head}. "
            f"Run `farm db upgrade --db {status.url}`"
        )
    migrate.upgrade(engine)
