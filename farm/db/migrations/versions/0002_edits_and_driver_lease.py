"""Assembled edits (versioned, never overwritten) and the driver lease on jobs.

The lease (``driver_id`` + ``driver_heartbeat_at``) lets a resumed scheduler tell a dead driver from a
live one before it takes a job over.

Revision ID: 0002_edits_and_driver_lease
Revises: 0001_initial
Create Date: 2026-05-10
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0002_edits_and_driver_lease"
down_revision: str | None = "0001_initial"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TIMESTAMP = sa.DateTime(timezone=True)
JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")


def upgrade() -> None:
    with op.batch_alter_table("jobs") as batch:
        batch.add_column(sa.Column("driver_id", sa.String(200), nullable=True))
        batch.add_column(sa.Column("driver_heartbeat_at", TIMESTAMP, nullable=True))
    op.create_table(
        "edits",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("job_id", sa.Integer(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("video_path", sa.Text(), nullable=False),
        sa.Column("otio_path", sa.Text(), nullable=True),
        sa.Column("report_path", sa.Text(), nullable=True),
        sa.Column("verdict", sa.String(32), nullable=False),
        sa.Column("summary", JSON, nullable=False),
        sa.Column("created_at", TIMESTAMP, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_edits"),
        sa.UniqueConstraint("job_id", "version", name="uq_edits_job_id_version"),
        sa.ForeignKeyConstraint(["job_id"], ["jobs.id"], name="fk_edits_job_id_jobs", ondelete="CASCADE"),
    )


def downgrade() -> None:
    op.drop_table("edits")
    with op.batch_alter_table("jobs") as batch:
        batch.drop_column("driver_heartbeat_at")
        batch.drop_column("driver_id")
