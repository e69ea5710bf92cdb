"""The tracking database: every job, shot, render attempt, artifact, edit and event (SQLAlchemy 2 + Alembic).

Open it with ``farm.db.session.open_database(url)``; change state only through ``farm.db.transitions``;
read through ``farm.db.queries``. SQLite (a file in the data dir) is the default; PostgreSQL serves a
studio. This package module imports nothing heavy, so commands that never touch the database stay fast.
"""
