"""farm: a render farm for AI avatar video.

YAML shot lists become per-shot render tasks on a Ray cluster; finished shots are assembled into an
edit with continuity checks, and every job, shot, attempt and artifact is tracked in a SQL database.
"""

__version__ = "0.1.0"
