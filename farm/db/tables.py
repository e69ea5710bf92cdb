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
from farm.db.kinds import ArtifactKind, EventKind
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
        CheckConstraint(enum_check("verdict", Verdict), name="verdict"),
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
