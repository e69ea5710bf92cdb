"""The database's vocabularies besides states: what an artifact is, what an event records, what a producer
decided of an edit, what a token may do.

All of them are stored as text under a CHECK constraint (``farm.db.tables``), so a misspelt kind is refused by
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
    SHOT_WAITING = "shot.waiting"
    """A queued shot waits for its cache key, which another attempt is rendering (it is then served from
    the cache)."""
    NODE_BLOCKLISTED = "node.blocklisted"
    RENDER_FINISHED = "render.finished"
    EDIT_RECORDED = "edit.recorded"
    JOB_PRIORITY = "job.priority"
    JOB_HELD = "job.held"
    """The manager holds a job back (its show's GPU-hour budget is spent) or lets it go again."""
    MANAGER_LEASE = "manager.lease"
    """A ``farm serve`` became the farm's manager (or handed the role over)."""
    SHOW_CHANGED = "show.changed"
    EDIT_REVIEWED = "edit.reviewed"
    """A producer approved an edit version, or asked for retakes of some of its shots, with a comment."""


class Review(enum.StrEnum):
    """A producer's decision on one edit version (Kitsu's review step: approve it, or send shots back)."""

    APPROVED = "approved"
    RETAKE = "retake"


class DeliveryState(enum.StrEnum):
    """Where one notification is: waiting to be sent (or retried), delivered, or given up on."""

    PENDING = "pending"
    DELIVERED = "delivered"
    FAILED = "failed"
    """Every attempt failed; the last response is kept on the row."""


class Channel(enum.StrEnum):
    """How a notification travels."""

    WEBHOOK = "webhook"
    """farm's JSON event, signed per Standard Webhooks."""
    SLACK = "slack"
    """A Slack-compatible incoming-webhook message."""
    EMAIL = "email"


class Role(enum.StrEnum):
    """What an API token may do (``farm.api.auth`` holds the table of which role may do what)."""

    EDITOR = "editor"
    """Submits shot lists, reads every job, and cancels, retries and reprioritises its own."""
    PRODUCER = "producer"
    """Reads everything and reviews edits (approves them, or sends shots back); changes nothing else."""
    ADMIN = "admin"
    """Everything, shows' shares, quotas and budgets included."""
