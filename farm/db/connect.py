"""Database URLs and engines: SQLite tuned for one writer and many readers, PostgreSQL through psycopg 3.

SQLite (the default, a file in the data dir) gets, on every connection: WAL (readers never block the
writer), a busy timeout (a second writer waits instead of failing), ``synchronous=NORMAL`` (safe with WAL)
and foreign keys. pysqlite's own implicit BEGIN is switched off and farm emits the BEGIN itself:
``BEGIN IMMEDIATE`` for writes, so a write transaction takes the lock up front and waits for it under the
busy timeout (a deferred BEGIN that later writes fails at once with "database is locked"), and a plain
``BEGIN`` for reads, so ``farm status`` never holds the write lock.
"""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import URL, Connection, make_url
from sqlalchemy.exc import ArgumentError
from sqlalchemy.pool import StaticPool

from farm.db.errors import DatabaseMissing
from farm.errors import UsageError

SQLITE_BUSY_TIMEOUT_MS = 30_000
READ_ONLY = "farm_read_only"
"""Execution option marking a connection whose transactions only read (a deferred BEGIN on SQLite)."""

_POSTGRES_DRIVERS = {"postgres", "postgresql", "postgresql+psycopg"}
_SQLITE_DRIVERS = {"sqlite", "sqlite+pysqlite"}
URL_HINT = "use sqlite:///path/to/farm.db or postgresql://user@host:5432/dbname"


def normalise_url(url: str | URL) -> URL:
    """``url`` parsed, with ``postgresql://`` (and ``postgres://``) pointed at the psycopg 3 driver."""
    try:
        parsed = make_url(url) if isinstance(url, str) else url
    except ArgumentError as exc:
        raise UsageError(f"database URL {str(url)!r} is not a URL; {URL_HINT}") from exc
    if parsed.drivername in _POSTGRES_DRIVERS:
        return parsed.set(drivername="postgresql+psycopg")
    if parsed.drivername in _SQLITE_DRIVERS:
        return parsed
    raise UsageError(f"database URL {display_url(parsed)!r}: farm supports SQLite and PostgreSQL only; {URL_HINT}")


def display_url(url: URL) -> str:
    """The URL with its password hidden, for messages and ``farm db current``."""
    return url.render_as_string(hide_password=True)


def is_sqlite(url: URL) -> bool:
    return url.get_backend_name() == "sqlite"


def create_sql_engine(url: URL, *, foreign_keys: bool = True, create: bool = True) -> Engine:
    """An engine for ``url`` (already normalised); ``foreign_keys=False`` only for SQLite migrations.

    ``create=False`` (reads) refuses an SQLite file that does not exist instead of creating it and its
    folders: DatabaseMissing names the file.
    """
    if is_sqlite(url):
        return _sqlite_engine(url, foreign_keys=foreign_keys, create=create)
    return create_engine(
        url,
        pool_pre_ping=True,
        # Sessions in UTC: timestamps come back already in UTC, with no conversion per row.
        connect_args={"connect_timeout": 10, "application_name": "farm", "options": "-c timezone=UTC"},
    )


def _sqlite_engine(url: URL, *, foreign_keys: bool, create: bool) -> Engine:
    memory = url.database in (None, "", ":memory:")
    if not memory:
        path = Path(url.database).expanduser()
        if not create and not path.is_file():
            raise DatabaseMissing(
                f"there is no farm database at {path}: nothing was submitted with this data dir; "
                "check --data-dir / FARM_DATA_DIR or --db / FARM_DATABASE_URL"
            )
        path.parent.mkdir(parents=True, exist_ok=True)
    options: dict[str, Any] = {
        "connect_args": {"check_same_thread": False, "timeout": SQLITE_BUSY_TIMEOUT_MS / 1000},
    }
    if memory:
        options["poolclass"] = StaticPool
    engine = create_engine(url, **options)

    @event.listens_for(engine, "connect")
    def _configure_connection(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute(f"PRAGMA busy_timeout = {SQLITE_BUSY_TIMEOUT_MS}")
        if not memory:
            _enable_wal(cursor)
        cursor.execute("PRAGMA synchronous = NORMAL")
        cursor.execute(f"PRAGMA foreign_keys = {'ON' if foreign_keys else 'OFF'}")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _begin(connection: Connection) -> None:
        # Leaving SQLAlchemy's AUTOCOMMIT isolation level hands pysqlite its implicit BEGIN back; take it away
        # again, or pysqlite would open a transaction of its own before ours.
        dbapi_connection = connection.connection.dbapi_connection
        if dbapi_connection is not None and dbapi_connection.isolation_level is not None:
            dbapi_connection.isolation_level = None
        read_only = connection.get_execution_options().get(READ_ONLY, False)
        connection.exec_driver_sql("BEGIN" if read_only else "BEGIN IMMEDIATE")

    return engine


def _enable_wal(cursor: sqlite3.Cursor) -> None:
    """Switch the file to WAL once. Switching needs an exclusive lock and SQLite does not wait for it under
    the busy timeout, so connections racing to open a brand-new file retry until the first one has done it."""
    if cursor.execute("PRAGMA journal_mode").fetchone()[0] == "wal":
        return
    deadline = time.monotonic() + SQLITE_BUSY_TIMEOUT_MS / 1000
    while True:
        try:
            cursor.execute("PRAGMA journal_mode = WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise
            time.sleep(0.02)
