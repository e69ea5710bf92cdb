"""The tracking database: every job, shot, render attempt, artifact, edit and event (SQLAlchemy 2 + Alembic).

Open it with ``farm.db.session.open_database(url)`` (``read_only=True`` for reads, which never create or
migrate one); change state only through ``farm.db.jobs``, ``shots``, ``lease`` and ``products``, whose
every move of a job or shot goes through the one state machine in ``farm.db.machine`` (the table is
``farm.db.states``); read through ``farm.db.queries``. Records in and out are plain dataclasses
(``farm.db.records``, ``NewJob``/``NewShot``, ``ArtifactRecord``, ``NewEdit``): this layer knows nothing
of shot lists or plans. SQLite (a file in the data dir) is the default; PostgreSQL serves a studio. It
imports nothing heavy (no numpy, torch, YAML or Ray; a test says so), so reads stay fast.
"""
