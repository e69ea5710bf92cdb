"""Schema versions: where a database stands, and upgrading (or downgrading) it with the shipped migrations.

The Alembic configuration is built in code from the migrations folder inside the package, so an installed
farm needs no alembic.ini. A database whose revision this code does not know was upgraded by a newer
farm: we refuse to touch it rather than run old code on a new schema.

Checking the version does not import Alembic (which with Mako and Pygments costs ~0.4 s per command):
the database's revision is read with one SELECT and compared with ``HEAD_REVISION``. Alembic is loaded
only when a migration has to run or an unfamiliar revision has to be looked up.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import Engine, inspect, text
from sqlalchemy.engine import Connection

from farm.db.connect import READ_ONLY, create_sql_engine, display_url, is_sqlite
from farm.db.errors import SchemaVersionError
from farm.errors import UsageError

if TYPE_CHECKING:
    from alembic.config import Config
    from alembic.script import ScriptDirectory

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"
HEAD_REVISION = "0015_shot_listing_index"
"""The newest migration in migrations/versions (a test keeps this in step with the files)."""
VERSION_TABLE = "alembic_version"

_ALEMBIC_LOCK = threading.Lock()
"""Alembic keeps its running migration in module globals, so one process runs one migration at a time.
Across processes the database serialises them (BEGIN IMMEDIATE on SQLite, an advisory lock on PostgreSQL)."""


def alembic_config(connection: Connection | None = None, *, data_dir: Path | None = None) -> Config:
    """An Alembic Config for farm's migrations; env.py migrates ``connection``. ``data_dir`` is for a migration
    that needs it (turning relative paths back into absolute ones on the way down)."""
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.attributes["connection"] = connection
    config.attributes["data_dir"] = data_dir
    return config


@cache
def script_directory() -> ScriptDirectory:
    from alembic.script import ScriptDirectory

    return ScriptDirectory.from_config(alembic_config())


def head_revision() -> str:
    return HEAD_REVISION


@cache
def known_revisions() -> tuple[str, ...]:
    """Every revision this farm ships, oldest first."""
    return tuple(reversed([script.revision for script in script_directory().walk_revisions()]))


@dataclass(frozen=True)
class SchemaStatus:
    url: str
    current: str | None
    """The database's revision; None for a database farm has never touched."""
    head: str

    @property
    def known(self) -> bool:
        return self.current in (None, self.head) or self.current in known_revisions()

    @property
    def up_to_date(self) -> bool:
        return self.current == self.head


def current_revision(connection: Connection) -> str | None:
    """The revision recorded in the database, or None if it has no farm schema."""
    if not inspect(connection).has_table(VERSION_TABLE):
        return None
    return connection.execute(text(f"SELECT version_num FROM {VERSION_TABLE}")).scalar_one_or_none()


def schema_status(engine: Engine) -> SchemaStatus:
    with engine.connect() as connection:
        connection = connection.execution_options(**{READ_ONLY: True})
        with connection.begin() as transaction:
            current = current_revision(connection)
            transaction.rollback()
    return SchemaStatus(url=display_url(engine.url), current=current, head=HEAD_REVISION)


def check_not_newer(status: SchemaStatus) -> None:
    if not status.known:
        raise SchemaVersionError(
            f"database {status.url} is at schema revision {status.current}, which this farm does not know "
            f"(its newest is {status.head}): a newer farm upgraded it. Install that farm version, or point "
            "--db / FARM_DATABASE_URL at another database"
        )


def upgrade(engine: Engine, revision: str = "head") -> SchemaStatus:
    """Migrate the database behind ``engine`` up to ``revision``, in one transaction; returns the new status."""
    from alembic import command

    check_not_newer(schema_status(engine))
    _check_revision(revision)
    _run(engine, lambda config: command.upgrade(config, revision))
    return schema_status(engine)


def downgrade(engine: Engine, revision: str, *, data_dir: Path | None = None) -> SchemaStatus:
    """Migrate down to ``revision`` (``base`` drops everything); for tests and careful operators. Below
    0009 the database holds absolute paths again: name the ``data_dir`` they are joined to."""
    from alembic import command

    check_not_newer(schema_status(engine))
    _check_revision(revision)
    _run(engine, lambda config: command.downgrade(config, revision), data_dir=data_dir)
    return schema_status(engine)


def _check_revision(revision: str) -> None:
    if revision not in ("head", "base", *known_revisions()):
        raise UsageError(
            f"unknown schema revision {revision!r}; use head, base or one of {', '.join(known_revisions())}"
        )


def _run(engine: Engine, step: Callable[[Config], None], *, data_dir: Path | None = None) -> None:
    # SQLite rebuilds a table to alter it (copy, drop, rename); with foreign keys on, dropping the old
    # table would cascade into the rows that refer to it. So SQLite migrates on a connection with foreign
    # keys off and checks them afterwards, as SQLite's own ALTER TABLE procedure prescribes.
    migration_engine = create_sql_engine(engine.url, foreign_keys=False) if is_sqlite(engine.url) else engine
    try:
        with _ALEMBIC_LOCK, migration_engine.connect() as connection:
            step(alembic_config(connection, data_dir=data_dir))
            connection.commit()
            if is_sqlite(engine.url):
                _check_foreign_keys(connection)
    finally:
        if migration_engine is not engine:
            migration_engine.dispose()


def _check_foreign_keys(connection: Connection) -> None:
    with connection.execution_options(**{READ_ONLY: True}).begin():
        problems = connection.execute(text("PRAGMA foreign_key_check")).fetchall()
    if problems:
        table, rowid, parent, _ = problems[0]
        raise SchemaVersionError(
            f"after the migration, {len(problems)} row(s) break foreign keys (first: {table} row {rowid} "
            f"refers to a missing {parent} row); restore the database from a backup and report this"
        )
