"""The tracking database: every job, shot, render attempt, artifact, edit and event (SQLAlchemy 2 + Alembic).

Open it with ``open_database(url)``; change state only through ``farm.db.transitions``; read through
``farm.db.queries``. SQLite (a file in the data dir) is the default; PostgreSQL serves a studio.
"""

from farm.db.session import Database, open_database
from farm.db.states import AttemptState, IllegalTransition, JobState, LostRace, ShotState

__all__ = ["AttemptState", "Database", "IllegalTransition", "JobState", "LostRace", "ShotState", "open_database"]
