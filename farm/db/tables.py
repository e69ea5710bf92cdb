"""The tables: every fact about a render lives here (SQLAlchemy 2 typed declarative models).

Naming: ``shots.shot_id`` is the editor's shot id (``sc01_010``) while ``renders.shot_id`` and
``events.shot_id`` are foreign keys to ``shots.id``, the integer a person never types. Job ids are small
integers because producers type them (``farm status 12``).

The Alembic migrations in ``farm/db/migrations/versions`` create exactly these tables; a test compares
the two, so change both together.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from farm.db.columns import EnumText, JSONDocument, UTCDateTime, enum_check, utcnow
from farm.db.kinds import ArtifactKind, Channel, DeliveryState, EventKind, Review
from farm.db.states import AttemptState, JobState, ShotState
from farm.verdicts import Verdict

NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}
"""Every constraint has a predictable name, so SQLite batch migrations can find and alter it."""

NAME = 200
"""Length of short names (project, shot id, worker, node)."""

EventId = BigInteger().with_variant(Integer(), "sqlite")
"""64-bit on PostgreSQL; on SQLite only INTEGER PRIMARY KEY autoincrements (it is 64-bit there anyway)."""


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class Job(Base):
    """One submission of a shot list: what to render, who asked, and how far it got."""

    __tablename__ = "jobs"
    __table_args__ = (
        CheckConstraint(enum_check("state", JobState), name="state"),
        Index(None, "state"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    project: Mapped[str] = mapped_column(String(NAME))
    episode: Mapped[str] = mapped_column(String(NAME))
    shot_list_path: Mapped[str] = mapped_column(Text)
    shot_list_sha256: Mapped[str] = mapped_column(String(64))
    quality: Mapped[str] = mapped_column(String(16))
    priority: Mapped[int] = mapped_column(Integer, default=0)
    state: Mapped[JobState] = mapped_column(EnumText(JobState), default=JobState.QUEUED)
    options: Mapped[dict[str, Any]] = mapped_column(JSONDocument, default=dict)
    submitted_by: Mapped[str] = mapped_column(String(NAME))
    submitted_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    driver_id: Mapped[str | None] = mapped_column(String(NAME))
    """The scheduler process driving this job; with the heartbeat, how a resume knows the old one is gone."""
    driver_heartbeat_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    hold_reason: Mapped[str | None] = mapped_column(Text)
    """Why the manager is holding a waiting job back (its show's GPU-hour budget is spent); None to run."""


class Shot(Base):
    """One shot of a job: its planned task (``spec``), cache key, state and the attempt now current."""

    __tablename__ = "shots"
    __table_args__ = (
        UniqueConstraint("job_id", "shot_id"),
        CheckConstraint(enum_check("state", ShotState), name="state"),
        Index(None, "job_id", "edit_order"),
        Index(None, "job_id", "state", "edit_order"),
        Index(None, "cache_key"),
        Index(None, "current_render_id"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    job_id: Mapped[int] = mapped_column(ForeignKey("jobs.id", ondelete="CASCADE"))
    shot_id: Mapped[str] = mapped_column(String(NAME))
    scene_id: Mapped[str] = mapped_column(String(NAME))
    edit_order: Mapped[int] = mapped_column(Integer)
    spec: Mapped[dict[str, Any]] = mapped_column(JSONDocument)
    cache_key: Mapped[str] = mapped_column(String(64))
    frames: Mapped[int] = mapped_column(Integer)
    state: Mapped[ShotState] = mapped_column(EnumText(ShotState), default=ShotState.QUEUED)
    cached: Mapped[bool] = mapped_column(Boolean, default=False)
    """Done because the cache key already had an artifact, not because it was rendered for this job."""
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    current_render_id: Mapped[int | None] = mapped_column(ForeignKey("renders.id", ondelete="SET NULL", use_alter=True))
    """The fencing token: only this attempt may finish the shot."""
    artifact_id: Mapped[int | None] = mapped_column(ForeignKey("artifacts.id", ondelete="SET NULL"))
    gpu_seconds: Mapped[float] = mapped_column(Float, default=0.0)
    render_seconds: Mapped[float] = mapped_column(Float, default=0.0, server_default=text("0"))
    """Wall time of the attempt that rendered the current artifact (0 for a cache hit): the job's
    observed speed, summed with the frames, without reading the attempts."""
    last_error: Mapped[str | None] = mapped_column(Text)
    retake_reason: Mapped[str | None] = mapped_column(Text)
    """Why the last continuity retake gave the shot its recipe (and how: new seed, continuation,
    from the reference, escalation); None while it renders the shot list's own."""
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class Render(Base):
    """One attempt at rendering a shot, on one worker; rows are never reused, so every try stays visible."""

    __tablename__ = "renders"
    __table_args__ = (
        UniqueConstraint("shot_id", "attempt_no"),
        CheckConstraint(enum_check("state", AttemptState), name="state"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    shot_id: Mapped[int] = mapped_column(ForeignKey("shots.id", ondelete="CASCADE"))
    attempt_no: Mapped[int] = mapped_column(Integer)
    worker: Mapped[str] = mapped_column(String(NAME))
    node: Mapped[str] = mapped_column(String(NAME))
    device: Mapped[str] = mapped_column(String(NAME))
    state: Mapped[AttemptState] = mapped_column(EnumText(AttemptState), default=AttemptState.RUNNING)
    started_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    progress: Mapped[float] = mapped_column(Float, default=0.0)
    """0-1, written by the worker while the attempt runs."""
    phase: Mapped[str | None] = mapped_column(String(64))
    progress_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    error_class: Mapped[str | None] = mapped_column(String(NAME))
    error_message: Mapped[str | None] = mapped_column(Text)
    gpu_seconds: Mapped[float] = mapped_column(Float, default=0.0)
    warnings: Mapped[list[str] | None] = mapped_column(JSONDocument)
    timings: Mapped[dict[str, float] | None] = mapped_column(JSONDocument)
    """Seconds per stage of the attempt, as the worker measured them (waiting for the slot, the model's
    own stages, encoding): where a render's time went, for ``farm status`` and cost estimates."""
    log_path: Mapped[str | None] = mapped_column(Text)
    """The attempt's captured worker output, warnings and traceback (``farm logs``)."""


class Artifact(Base):
    """A file in the content-addressed store: one row per (cache key, kind), whichever job made it."""

    __tablename__ = "artifacts"
    __table_args__ = (
        UniqueConstraint("cache_key", "kind"),
        CheckConstraint(enum_check("kind", ArtifactKind), name="kind"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    cache_key: Mapped[str] = mapped_column(String(64))
    kind: Mapped[ArtifactKind] = mapped_column(EnumText(ArtifactKind, length=32))
    path: Mapped[str] = mapped_column(Text)
    bytes: Mapped[int] = mapped_column(BigInteger)
    sha256: Mapped[str] = mapped_column(String(64))
    frames: Mapped[int | None] = mapped_column(Integer)
    duration: Mapped[float | None] = mapped_column(Float)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class Edit(Base):
    """One assembled edit of a job; each assembly is a new version, none is overwritten."""

    __tablename__ = "edits"
    __table_args__ = (
        UniqueConstraint("job_id", "version"),
        Index(None, "content_key"),
        CheckConstraint(enum_check("verdict", Verdict), name="verdict"),
        CheckConstraint(enum_check("review", Review), name="review"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    job_id: Mapped[int] = mapped_column(ForeignKey("jobs.id", ondelete="CASCADE"))
    version: Mapped[int] = mapped_column(Integer)
    video_path: Mapped[str] = mapped_column(Text)
    otio_path: Mapped[str | None] = mapped_column(Text)
    report_path: Mapped[str | None] = mapped_column(Text)
    verdict: Mapped[Verdict] = mapped_column(EnumText(Verdict, length=32))
    """The continuity checks' overall verdict (pass, warn or fail)."""
    summary: Mapped[dict[str, Any]] = mapped_column(JSONDocument, default=dict)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    review: Mapped[Review | None] = mapped_column(EnumText(Review, length=32), nullable=True)
    """A producer's decision on this version (approved, or retake); None until reviewed."""
    review_comment: Mapped[str | None] = mapped_column(Text, nullable=True)
    reviewed_by: Mapped[str | None] = mapped_column(String(NAME), nullable=True)
    reviewed_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    content_key: Mapped[str | None] = mapped_column(String(64), nullable=True)
    """The identity of the edit's inputs (``farm.edit.content_key``); None for edits made before it existed."""
    reused_from_id: Mapped[int | None] = mapped_column(ForeignKey("edits.id", ondelete="SET NULL"), nullable=True)
    """The edit whose files this version re-uses (same content key, nothing assembled); None when assembled."""


class Event(Base):
    """The append-only audit log: who changed what, when, from which state to which."""

    __tablename__ = "events"
    __table_args__ = (
        Index(None, "job_id", "id"),
        Index(None, "shot_id"),
        CheckConstraint(enum_check("kind", EventKind), name="kind"),
    )

    id: Mapped[int] = mapped_column(EventId, primary_key=True, autoincrement=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    changed_by: Mapped[str] = mapped_column(String(NAME))
    """Who made the change: a login name, or a process such as ``driver@host``."""
    kind: Mapped[EventKind] = mapped_column(EnumText(EventKind, length=32))
    job_id: Mapped[int | None] = mapped_column(ForeignKey("jobs.id", ondelete="CASCADE"))
    shot_id: Mapped[int | None] = mapped_column(ForeignKey("shots.id", ondelete="CASCADE"))
    render_id: Mapped[int | None] = mapped_column(ForeignKey("renders.id", ondelete="CASCADE"))
    old_state: Mapped[str | None] = mapped_column(String(16))
    new_state: Mapped[str | None] = mapped_column(String(16))
    message: Mapped[str] = mapped_column(Text, default="")
    data: Mapped[dict[str, Any] | None] = mapped_column(JSONDocument)


class ManagerLease(Base):
    """Which ``farm serve`` is the farm's manager now, proven alive by its heartbeat (one row per role)."""

    __tablename__ = "manager_lease"

    role: Mapped[str] = mapped_column(String(NAME), primary_key=True)
    holder: Mapped[str | None] = mapped_column(String(NAME))
    heartbeat_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    since: Mapped[datetime | None] = mapped_column(UTCDateTime)
    api_url: Mapped[str | None] = mapped_column(Text)
    """Where the manager's HTTP API listens, so ``farm status`` can say where to submit."""


class RenderClaim(Base):
    """A cache key being rendered now, and by which attempt: one render per key, farm-wide.

    The attempt that claims a key (``farm.db.claims``) holds it until its attempt ends or its lease lapses
    (a driver that died stops renewing ``expires_at``); any other job that needs the key waits for it and is
    then served from the cache instead of rendering it again.
    """

    __tablename__ = "render_claims"

    cache_key: Mapped[str] = mapped_column(String(64), primary_key=True)
    render_id: Mapped[int] = mapped_column(ForeignKey("renders.id", ondelete="CASCADE"))
    """The claiming attempt: its render id is the fencing token (only it renews or releases the claim)."""
    holder: Mapped[str] = mapped_column(String(NAME))
    """The process that dispatched the attempt (its audit name), for the waiting shots' reason."""
    claimed_at: Mapped[datetime] = mapped_column(UTCDateTime)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)


class Show(Base):
    """A show (a shot list's ``project``) and what the manager gives it: a share, a quota, a budget."""

    __tablename__ = "shows"
    __table_args__ = (CheckConstraint("share > 0", name="share"),)

    name: Mapped[str] = mapped_column(String(NAME), primary_key=True)
    share: Mapped[float] = mapped_column(Float, default=1.0, server_default=text("1"))
    """Weight of the show's fair share of GPU time (equal shares by default)."""
    gpu_quota: Mapped[int | None] = mapped_column(Integer)
    """Most GPUs the show's shots may hold at once; None for no limit."""
    gpu_hour_budget: Mapped[float | None] = mapped_column(Float)
    """GPU hours the show may spend in all; when spent its jobs are held until it is raised."""
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class ApiToken(Base):
    """A bearer token for the HTTP API; only its SHA-256 is kept."""

    __tablename__ = "api_tokens"
    __table_args__ = (
        UniqueConstraint("token_sha256"),
        CheckConstraint("role IN ('editor', 'producer', 'admin')", name="role"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(NAME))
    """Who holds it; an editor's jobs are submitted under this name."""
    role: Mapped[str] = mapped_column(String(16))
    token_sha256: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class IdempotencyKey(Base):
    """A submit's ``Idempotency-Key``: the same key from the same submitter returns the same job."""

    __tablename__ = "idempotency_keys"
    __table_args__ = (UniqueConstraint("submitted_by", "key"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    key: Mapped[str] = mapped_column(String(NAME))
    submitted_by: Mapped[str] = mapped_column(String(NAME))
    request_sha256: Mapped[str] = mapped_column(String(64))
    """The request it came with: the same key with a different request is refused, not answered."""
    job_id: Mapped[int] = mapped_column(ForeignKey("jobs.id", ondelete="CASCADE"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class Notification(Base):
    """One message to one target about one event (a job done or failed, an edit failing QC, a stuck shot, a
    spent budget), with every delivery attempt's outcome: kept so a receiver that is down loses nothing and
    a producer can see what was sent."""

    __tablename__ = "notifications"
    __table_args__ = (
        UniqueConstraint("event_id", "channel", "target"),
        Index(None, "state", "next_attempt_at"),
        Index(None, "job_id"),
        CheckConstraint(enum_check("state", DeliveryState), name="state"),
        CheckConstraint(enum_check("channel", Channel), name="channel"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    event_id: Mapped[int] = mapped_column(ForeignKey("events.id", ondelete="CASCADE"))
    """The audit-log entry it tells of (a notification is made once per event and target)."""
    job_id: Mapped[int | None] = mapped_column(ForeignKey("jobs.id", ondelete="CASCADE"))
    topic: Mapped[str] = mapped_column(String(32))
    """``job.done``, ``job.failed``, ``edit.failed_qc``, ``shot.stuck`` or ``budget.spent``."""
    channel: Mapped[Channel] = mapped_column(EnumText(Channel, length=16))
    target: Mapped[str] = mapped_column(Text)
    """The URL or the email address."""
    payload: Mapped[dict[str, Any]] = mapped_column(JSONDocument)
    state: Mapped[DeliveryState] = mapped_column(EnumText(DeliveryState, length=16), default=DeliveryState.PENDING)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_status: Mapped[str | None] = mapped_column(String(NAME))
    """The last attempt's HTTP status or SMTP reply code, or the error that stopped it."""
    last_response: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    delivered_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class NotifierCursor(Base):
    """How far the notifier has read the event log: events after it are still to be turned into
    notifications (advanced in the transaction that records them, so none is made twice or missed)."""

    __tablename__ = "notifier_cursor"

    name: Mapped[str] = mapped_column(String(NAME), primary_key=True)
    last_event_id: Mapped[int] = mapped_column(EventId, default=0)
