"""The database's vocabularies besides states: what an artifact is, and what an event records.

Both are stored as text under a CHECK constraint (``farm.db.tables``), so a misspelt kind is refused by
the database itself; adding a member needs a migration that widens the constraint.
"""

from __future__ import annotations

import enum


class ArtifactKind(enum.StrEnum):
    """What a file in the content-addressed artifact store holds."""

    SHOT_VIDEO = "shot_video"
    """The rendered shot: H.264 video with its dialogue."""
    LAST_FRAMES = "last_frames"
    """The shot's final frames, for a shot that continues it."""


class EventKind(enum.StrEnum):
    """What an audit-log entry records."""

    JOB_SUBMITTED = "job.submitted"
    JOB_STATE = "job.state"
    JOB_DRIVER = "job.driver"
    SHOT_CREATED = "shot.created"
    SHOT_STARTED = "shot.started"
    SHOT_FINISHED = "shot.finished"
    SHOT_CACHED = "shot.cached"
    SHOT_CANCELLED = "shot.cancelled"
    SHOT_REQUEUED = "shot.requeued"
    SHOT_RECOVERED = "shot.recovered"
    SHOT_FAILED = "shot.failed"
    NODE_BLOCKLISTED = "node.blocklisted"
    RENDER_FINISHED = "render.finished"
    EDIT_RECORDED = "edit.recorded"
