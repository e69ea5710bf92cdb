"""Jobs, shots, render attempts, artifacts and the event log.

Revision ID: 0001_initial
Revises:
Create Date: 2026-05-10
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0001_initial"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TIMESTAMP = sa.DateTime(timezone=True)
JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
EVENT_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
JOB_STATES = "'queued', 'running', 'done', 'failed', 'cancelled'"
SHOT_STATES = JOB_STATES
ATTEMPT_STATES = "'running', 'succeeded', 'failed', 'crashed', 'cancelled'"


def upgrade() -> None:
    op.create_table(
        "artifacts",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("cache_key", sa.String(64), nullable=False),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("path", sa.Text(), nullable=False),
        sa.Column("bytes", sa.BigInteger(), nullable=False),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("frames", sa.Integer(), nullable=True),
        sa.Column("duration", sa.Float(), nullable=True),
        sa.Column("created_at", TIMESTAMP, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_artifacts"),
        sa.UniqueConstraint("cache_key", "kind", name="uq_artifacts_cache_key_kind"),
    )
    op.create_table(
        "jobs",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("project", sa.String(200), nullable=False),
        sa.Column("episode", sa.String(200), nullable=False),
        sa.Column("shot_list_path", sa.Text(), nullable=False),
        sa.Column("shot_list_sha256", sa.String(64), nullable=False),
        sa.Column("quality", sa.String(16), nullable=False),
        sa.Column("priority", sa.Integer(), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("options", JSON, nullable=False),
        sa.Column("submitted_by", sa.String(200), nullable=False),
        sa.Column("submitted_at", TIMESTAMP, nullable=False),
        sa.Column("started_at", TIMESTAMP, nullable=True),
        sa.Column("finished_at", TIMESTAMP, nullable=True),
        sa.Column("updated_at", TIMESTAMP, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_jobs"),
        sa.CheckConstraint(f"state IN ({JOB_STATES})", name="ck_jobs_state"),
    )
    op.create_index("ix_jobs_state", "jobs", ["state"])
    op.create_table(
        "shots",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("job_id", sa.Integer(), nullable=False),
        sa.Column("shot_id", sa.String(200), nullable=False),
        sa.Column("scene_id", sa.String(200), nullable=False),
        sa.Column("edit_order", sa.Integer(), nullable=False),
        sa.Column("spec", JSON, nullable=False),
        sa.Column("cache_key", sa.String(64), nullable=False),
        sa.Column("frames", sa.Integer(), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("cached", sa.Boolean(), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("current_render_id", sa.Integer(), nullable=True),
        sa.Column("artifact_id", sa.Integer(), nullable=True),
        sa.Column("gpu_seconds", sa.Float(), nullable=False),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("updated_at", TIMESTAMP, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_shots"),
        sa.UniqueConstraint("job_id", "shot_id", name="uq_shots_job_id_shot_id"),
        sa.CheckConstraint(f"state IN ({SHOT_STATES})", name="ck_shots_state"),
        sa.ForeignKeyConstraint(["job_id"], ["jobs.id"], name="fk_shots_job_id_jobs", ondelete="CASCADE"),
        sa.ForeignKeyConstraint(
            ["artifact_id"], ["artifacts.id"], name="fk_shots_artifact_id_artifacts", ondelete="SET NULL"
        ),
    )
    op.create_index("ix_shots_job_id_edit_order", "shots", ["job_id", "edit_order"])
    op.create_index("ix_shots_job_id_state", "shots", ["job_id", "state"])
    op.create_index("ix_shots_cache_key", "shots", ["cache_key"])
    op.create_index("ix_shots_current_render_id", "shots", ["current_render_id"])
    op.create_table(
        "renders",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("shot_id", sa.Integer(), nullable=False),
        sa.Column("attempt_no", sa.Integer(), nullable=False),
        sa.Column("worker", sa.String(200), nullable=False),
        sa.Column("node", sa.String(200), nullable=False),
        sa.Column("device", sa.String(200), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("started_at", TIMESTAMP, nullable=False),
        sa.Column("finished_at", TIMESTAMP, nullable=True),
        sa.Column("progress", sa.Float(), nullable=False),
        sa.Column("phase", sa.String(64), nullable=True),
        sa.Column("progress_at", TIMESTAMP, nullable=True),
        sa.Column("error_class", sa.String(200), nullable=True),
        sa.Column("error_message", sa.Text(), nullable=True),
        sa.Column("gpu_seconds", sa.Float(), nullable=False),
        sa.Column("warnings", JSON, nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_renders"),
        sa.UniqueConstraint("shot_id", "attempt_no", name="uq_renders_shot_id_attempt_no"),
        sa.CheckConstraint(f"state IN ({ATTEMPT_STATES})", name="ck_renders_state"),
        sa.ForeignKeyConstraint(["shot_id"], ["shots.id"], name="fk_renders_shot_id_shots", ondelete="CASCADE"),
    )
    # shots and renders refer to each other; the second reference can only exist once both tables do.
    with op.batch_alter_table("shots") as batch:
        batch.create_foreign_key(
            "fk_shots_current_render_id_renders", "renders", ["current_render_id"], ["id"], ondelete="SET NULL"
        )
    op.create_table(
        "events",
        sa.Column("id", EVENT_ID, autoincrement=True, nullable=False),
        sa.Column("at", TIMESTAMP, nullable=False),
        sa.Column("actor", sa.String(200), nullable=False),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("job_id", sa.Integer(), nullable=True),
        sa.Column("shot_id", sa.Integer(), nullable=True),
        sa.Column("render_id", sa.Integer(), nullable=True),
        sa.Column("old_state", sa.String(16), nullable=True),
        sa.Column("new_state", sa.String(16), nullable=True),
        sa.Column("message", sa.Text(), nullable=False),
        sa.Column("data", JSON, nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_events"),
        sa.ForeignKeyConstraint(["job_id"], ["jobs.id"], name="fk_events_job_id_jobs", ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["shot_id"], ["shots.id"], name="fk_events_shot_id_shots", ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["render_id"], ["renders.id"], name="fk_events_render_id_renders", ondelete="CASCADE"),
    )
    op.create_index("ix_events_job_id_id", "events", ["job_id", "id"])
    op.create_index("ix_events_shot_id", "events", ["shot_id"])


def downgrade() -> None:
    op.drop_table("events")
    with op.batch_alter_table("shots") as batch:
        batch.drop_constraint("fk_shots_current_render_id_renders", type_="foreignkey")
    op.drop_table("renders")
    op.drop_table("shots")
    op.drop_table("jobs")
    op.drop_table("artifacts")
