"""Alembic environment: farm runs migrations on a connection it opened itself (see farm.db.migrate).

There is no alembic.ini and no URL here. SQLite migrations run in batch mode (copy-and-move, the only way
SQLite can alter a constraint) inside one transaction, so a failed upgrade leaves the old schema intact.
On PostgreSQL an advisory lock makes two processes that upgrade at once take turns.
"""

from __future__ import annotations

from alembic import context
from sqlalchemy import text

from farm.db.tables import metadata

MIGRATION_LOCK_KEY = 0x6661726D  # "farm"


def run_migrations_online() -> None:
    connection = context.config.attributes.get("connection")
    if connection is None:
        raise RuntimeError("farm's migrations run through farm.db.migrate (farm db upgrade), not the alembic CLI")
    sqlite = connection.dialect.name == "sqlite"
    context.configure(
        connection=connection,
        target_metadata=metadata,
        render_as_batch=sqlite,
        transactional_ddl=True,
        compare_type=True,
    )
    with context.begin_transaction():
        if connection.dialect.name == "postgresql":
            connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": MIGRATION_LOCK_KEY})
        context.run_migrations()


if context.is_offline_mode():
    raise RuntimeError("farm does not generate offline SQL scripts; run `farm db upgrade` against the database")
run_migrations_online()
