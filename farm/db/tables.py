"""The tables: every fact about a render lives here (SQLAlchemy Core ``Table`` objects).

farm reads and writes through Core statements only (``select(Shot.c.state)``, ``update(Job)``), so the
tables are Core: no ORM is imported or configured, which keeps the start of every command cheap
(mapping the classes and importing the ORM cost about a third of ``farm status``'s imports). Each table is
named by what one row of it is.

Naming: ``shots.shot_id`` is the editor's shot id (``sc01_010``) while ``renders.shot_id`` and
``events.shot_id`` are foreign keys to ``shots.id``, the integer a person never types. Job ids are small
integers because producers type them (``farm status 12``).

The Alembic migrations in ``farm/db/migrations/versions`` create exactly these tables; a test compares
the two, so change both together.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Column,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    text,
)

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


metadata = MetaData(naming_convention=NAMING_CONVENTION)

ROLLUP_INDEX = "ix_shots_rollup"
ROLLUP_COLUMNS = (
    "job_id", "scene_id", "state", "cached", "frames", "gpu_seconds", "render_seconds", "current_render_id",
    "edit_order",
)  # fmt: skip
LISTING_INDEX = "ix_shots_listing"
LISTING_COLUMNS = (
    "job_id", "edit_order", "id", "shot_id", "scene_id", "state", "cached", "attempts", "frames", "cache_key",
    "gpu_seconds", "render_seconds", "current_render_id", "artifact_id", "last_error", "retake_reason",
)  # fmt: skip
SQLITE_ONLY_INDEXES = frozenset({LISTING_INDEX})
"""Indexes created on SQLite alone (``ddl_if``): a schema comparison on another dialect leaves them out."""
COST_INDEX = "ix_renders_costs"
COST_COLUMNS = (
    "state", "model", "gpu_type", "width", "height", "steps", "frames", "model_seconds", "load_seconds",
)  # fmt: skip


Job = Table(
    "jobs",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("project", String(NAME), nullable=False),
    Column("episode", String(NAME), nullable=False),
    Column("shot_list_path", Text, nullable=False),
    Column("shot_list_sha256", String(64), nullable=False),
    Column("quality", String(16), nullable=False),
    Column("priority", Integer, default=0, nullable=False),
    Column("state", EnumText(JobState), default=JobState.QUEUED, nullable=False),
    Column("options", JSONDocument, default=dict, nullable=False),
    Column("submitted_by", String(NAME), nullable=False),
    Column("submitted_at", UTCDateTime, default=utcnow, nullable=False),
    Column("started_at", UTCDateTime),
    Column("finished_at", UTCDateTime),
    Column("updated_at", UTCDateTime, default=utcnow, nullable=False),
    # The scheduler process driving this job; with the heartbeat, how a resume knows the old one is gone.
    Column("driver_id", String(NAME)),
    Column("driver_heartbeat_at", UTCDateTime),
    # Why the manager is holding a waiting job back (its show's GPU-hour budget is spent); None to run.
    Column("hold_reason", Text),
    CheckConstraint(enum_check("state", JobState), name="state"),
    Index(None, "state"),
)
"""One submission of a shot list: what to render, who asked, and how far it got."""


Shot = Table(
    "shots",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("job_id", ForeignKey("jobs.id", ondelete="CASCADE"), nullable=False),
    Column("shot_id", String(NAME), nullable=False),
    Column("scene_id", String(NAME), nullable=False),
    Column("edit_order", Integer, nullable=False),
    Column("spec", JSONDocument, nullable=False),
    Column("cache_key", String(64), nullable=False),
    Column("frames", Integer, nullable=False),
    Column("state", EnumText(ShotState), default=ShotState.QUEUED, nullable=False),
    # Done because the cache key already had an artifact, not because it was rendered for this job.
    Column("cached", Boolean, default=False, nullable=False),
    Column("attempts", Integer, default=0, nullable=False),
    # The fencing token: only this attempt may finish the shot.
    Column("current_render_id", ForeignKey("renders.id", ondelete="SET NULL", use_alter=True)),
    Column("artifact_id", ForeignKey("artifacts.id", ondelete="SET NULL")),
    Column("gpu_seconds", Float, default=0.0, nullable=False),
    # Wall time of the attempt that rendered the current artifact (0 for a cache hit): the job's
    # observed speed, summed with the frames, without reading the attempts.
    Column("render_seconds", Float, default=0.0, server_default=text("0"), nullable=False),
    Column("last_error", Text),
    # Why the last continuity retake gave the shot its recipe (and how: new seed, continuation,
    # from the reference, escalation); None while it renders the shot list's own.
    Column("retake_reason", Text),
    Column("updated_at", UTCDateTime, default=utcnow, nullable=False),
    UniqueConstraint("job_id", "shot_id"),
    CheckConstraint(enum_check("state", ShotState), name="state"),
    Index(None, "job_id", "edit_order"),
    Index(None, "job_id", "state", "edit_order"),
    # Covers every column the status rollups (``farm.db.queries``) read, so counting a job's shots per scene
    # never reads the shots' rows and their planned tasks (about 1.5 KB each): 14 ms -> 3 ms on SQLite for
    # 10,000 shots.
    Index(ROLLUP_INDEX, *ROLLUP_COLUMNS),
    # Covers the shot listing (``farm status JOB --json``, the job page) in edit order, on SQLite only: it
    # skips the rows' planned tasks as the rollup index does (every shot of a 10,000-shot job: 48 -> 39 ms
    # in SQLite). PostgreSQL's listing is a hash join that reads few pages, and a B-tree entry there may not
    # exceed a third of a page, which a long error message could.
    Index(LISTING_INDEX, *LISTING_COLUMNS).ddl_if(dialect="sqlite"),
    Index(None, "cache_key"),
    Index(None, "current_render_id"),
)
"""One shot of a job: its planned task (``spec``), cache key, state and the attempt now current."""


Render = Table(
    "renders",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("shot_id", ForeignKey("shots.id", ondelete="CASCADE"), nullable=False),
    Column("attempt_no", Integer, nullable=False),
    Column("worker", String(NAME), nullable=False),
    Column("node", String(NAME), nullable=False),
    Column("device", String(NAME), nullable=False),
    Column("state", EnumText(AttemptState), default=AttemptState.RUNNING, nullable=False),
    Column("started_at", UTCDateTime, default=utcnow, nullable=False),
    Column("finished_at", UTCDateTime),
    # 0-1, written by the worker while the attempt runs.
    Column("progress", Float, default=0.0, nullable=False),
    Column("phase", String(64)),
    Column("progress_at", UTCDateTime),
    Column("error_class", String(NAME)),
    Column("error_message", Text),
    Column("gpu_seconds", Float, default=0.0, nullable=False),
    Column("warnings", JSONDocument),
    # Seconds per stage of the attempt, as the worker measured them (waiting for the slot, the model's
    # own stages, encoding): where a render's time went, for ``farm status`` and cost estimates.
    Column("timings", JSONDocument),
    # The attempt's captured worker output, warnings and traceback (``farm logs``).
    Column("log_path", Text),
    # What the attempt ran (model, size, frames, steps, the render parameters: its speed levers) and on
    # what (the GPU type its worker reported); None on attempts recorded before the cost model.
    Column("model", String(NAME)),
    Column("gpu_type", String(NAME)),
    Column("width", Integer),
    Column("height", Integer),
    Column("frames", Integer),
    Column("steps", Integer),
    Column("levers", JSONDocument),
    # The worker's busy time inside the model's render call (encoding included) and, on a worker's first
    # attempt only, its model load time (that attempt also paid the warm-up, so the per-frame fit leaves it
    # out): what the cost model (``farm.db.costs``) learns seconds per frame and load time from.
    Column("model_seconds", Float),
    Column("load_seconds", Float),
    UniqueConstraint("shot_id", "attempt_no"),
    CheckConstraint(enum_check("state", AttemptState), name="state"),
    # Covers the cost model's aggregate: learning the farm's costs reads the index, not the attempts.
    Index(COST_INDEX, *COST_COLUMNS),
)
"""One attempt at rendering a shot, on one worker; rows are never reused, so every try stays visible."""


Artifact = Table(
    "artifacts",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("cache_key", String(64), nullable=False),
    Column("kind", EnumText(ArtifactKind, length=32), nullable=False),
    Column("path", Text, nullable=False),
    Column("bytes", BigInteger, nullable=False),
    Column("sha256", String(64), nullable=False),
    Column("frames", Integer),
    Column("duration", Float),
    Column("created_at", UTCDateTime, default=utcnow, nullable=False),
    UniqueConstraint("cache_key", "kind"),
    CheckConstraint(enum_check("kind", ArtifactKind), name="kind"),
)
"""A file in the content-addressed store: one row per (cache key, kind), whichever job made it."""


Edit = Table(
    "edits",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("job_id", ForeignKey("jobs.id", ondelete="CASCADE"), nullable=False),
    Column("version", Integer, nullable=False),
    Column("video_path", Text, nullable=False),
    Column("otio_path", Text),
    Column("report_path", Text),
    # The continuity checks' overall verdict (pass, warn or fail).
    Column("verdict", EnumText(Verdict, length=32), nullable=False),
    Column("summary", JSONDocument, default=dict, nullable=False),
    Column("created_at", UTCDateTime, default=utcnow, nullable=False),
    # A producer's decision on this version (approved, or retake); None until reviewed.
    Column("review", EnumText(Review, length=32), nullable=True),
    Column("review_comment", Text, nullable=True),
    Column("reviewed_by", String(NAME), nullable=True),
    Column("reviewed_at", UTCDateTime, nullable=True),
    # The identity of the edit's inputs (``farm.edit.content_key``); None for edits made before it existed.
    Column("content_key", String(64), nullable=True),
    # The edit whose files this version re-uses (same content key, nothing assembled); None when assembled.
    Column("reused_from_id", ForeignKey("edits.id", ondelete="SET NULL"), nullable=True),
    UniqueConstraint("job_id", "version"),
    Index(None, "content_key"),
    CheckConstraint(enum_check("verdict", Verdict), name="verdict"),
    CheckConstraint(enum_check("review", Review), name="review"),
)
"""One assembled edit of a job; each assembly is a new version, none is overwritten."""


Event = Table(
    "events",
    metadata,
    Column("id", EventId, primary_key=True, autoincrement=True),
    Column("at", UTCDateTime, default=utcnow, nullable=False),
    # Who made the change: a login name, or a process such as ``driver@host``.
    Column("changed_by", String(NAME), nullable=False),
    Column("kind", EnumText(EventKind, length=32), nullable=False),
    Column("job_id", ForeignKey("jobs.id", ondelete="CASCADE")),
    Column("shot_id", ForeignKey("shots.id", ondelete="CASCADE")),
    Column("render_id", ForeignKey("renders.id", ondelete="CASCADE")),
    Column("old_state", String(16)),
    Column("new_state", String(16)),
    Column("message", Text, default="", nullable=False),
    Column("data", JSONDocument),
    Index(None, "job_id", "id"),
    Index(None, "shot_id"),
    CheckConstraint(enum_check("kind", EventKind), name="kind"),
)
"""The append-only audit log: who changed what, when, from which state to which."""


ManagerLease = Table(
    "manager_lease",
    metadata,
    Column("role", String(NAME), primary_key=True),
    Column("holder", String(NAME)),
    Column("heartbeat_at", UTCDateTime),
    Column("since", UTCDateTime),
    # Where the manager's HTTP API listens, so ``farm status`` can say where to submit.
    Column("api_url", Text),
)
"""Which ``farm serve`` is the farm's manager now, proven alive by its heartbeat (one row per role)."""


RenderClaim = Table(
    "render_claims",
    metadata,
    Column("cache_key", String(64), primary_key=True),
    # The claiming attempt: its render id is the fencing token (only it renews or releases the claim).
    Column("render_id", ForeignKey("renders.id", ondelete="CASCADE"), nullable=False),
    # The process that dispatched the attempt (its audit name), for the waiting shots' reason.
    Column("holder", String(NAME), nullable=False),
    Column("claimed_at", UTCDateTime, nullable=False),
    Column("expires_at", UTCDateTime, nullable=False),
)
"""A cache key being rendered now, and by which attempt: one render per key, farm-wide.

    The attempt that claims a key (``farm.db.claims``) holds it until its attempt ends or its lease lapses
    (a driver that died stops renewing ``expires_at``); any other job that needs the key waits for it and is
    then served from the cache instead of rendering it again."""


Show = Table(
    "shows",
    metadata,
    Column("name", String(NAME), primary_key=True),
    # Weight of the show's fair share of GPU time (equal shares by default).
    Column("share", Float, default=1.0, server_default=text("1"), nullable=False),
    # Most GPUs the show's shots may hold at once; None for no limit.
    Column("gpu_quota", Integer),
    # GPU hours the show may spend in all; when spent its jobs are held until it is raised.
    Column("gpu_hour_budget", Float),
    Column("updated_at", UTCDateTime, default=utcnow, nullable=False),
    CheckConstraint("share > 0", name="share"),
)
"""A show (a shot list's ``project``) and what the manager gives it: a share, a quota, a budget."""


ApiToken = Table(
    "api_tokens",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    # Who holds it; an editor's jobs are submitted under this name.
    Column("name", String(NAME), nullable=False),
    Column("role", String(16), nullable=False),
    Column("token_sha256", String(64), nullable=False),
    Column("created_at", UTCDateTime, default=utcnow, nullable=False),
    Column("revoked_at", UTCDateTime),
    UniqueConstraint("token_sha256"),
    CheckConstraint("role IN ('editor', 'producer', 'admin')", name="role"),
)
"""A bearer token for the HTTP API; only its SHA-256 is kept."""


IdempotencyKey = Table(
    "idempotency_keys",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("key", String(NAME), nullable=False),
    Column("submitted_by", String(NAME), nullable=False),
    # The request it came with: the same key with a different request is refused, not answered.
    Column("request_sha256", String(64), nullable=False),
    Column("job_id", ForeignKey("jobs.id", ondelete="CASCADE"), nullable=False),
    Column("created_at", UTCDateTime, default=utcnow, nullable=False),
    UniqueConstraint("submitted_by", "key"),
)
"""A submit's ``Idempotency-Key``: the same key from the same submitter returns the same job."""


Notification = Table(
    "notifications",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    # The audit-log entry it tells of (a notification is made once per event and target).
    Column("event_id", ForeignKey("events.id", ondelete="CASCADE"), nullable=False),
    Column("job_id", ForeignKey("jobs.id", ondelete="CASCADE")),
    # ``job.done``, ``job.failed``, ``edit.failed_qc``, ``shot.stuck`` or ``budget.spent``.
    Column("topic", String(32), nullable=False),
    Column("channel", EnumText(Channel, length=16), nullable=False),
    # The URL or the email address.
    Column("target", Text, nullable=False),
    Column("payload", JSONDocument, nullable=False),
    Column("state", EnumText(DeliveryState, length=16), default=DeliveryState.PENDING, nullable=False),
    Column("attempts", Integer, default=0, nullable=False),
    Column("next_attempt_at", UTCDateTime, default=utcnow, nullable=False),
    # The last attempt's HTTP status or SMTP reply code, or the error that stopped it.
    Column("last_status", String(NAME)),
    Column("last_response", Text),
    Column("created_at", UTCDateTime, default=utcnow, nullable=False),
    Column("delivered_at", UTCDateTime),
    UniqueConstraint("event_id", "channel", "target"),
    Index(None, "state", "next_attempt_at"),
    Index(None, "job_id"),
    CheckConstraint(enum_check("state", DeliveryState), name="state"),
    CheckConstraint(enum_check("channel", Channel), name="channel"),
)
"""One message to one target about one event (a job done or failed, an edit failing QC, a stuck shot, a
    spent budget), with every delivery attempt's outcome: kept so a receiver that is down loses nothing and
    a producer can see what was sent."""


NotifierCursor = Table(
    "notifier_cursor",
    metadata,
    Column("name", String(NAME), primary_key=True),
    Column("last_event_id", EventId, default=0, nullable=False),
)
"""How far the notifier has read the event log: events after it are still to be turned into
    notifications (advanced in the transaction that records them, so none is made twice or missed)."""
