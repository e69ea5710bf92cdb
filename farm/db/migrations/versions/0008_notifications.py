"""Notifications: ``notifications`` (one message per event and target, with its delivery attempts) and
``notifier_cursor`` (how far the notifier has read the event log).

A receiver that is down loses nothing: a pending notification stays in the table with its next attempt's
time, and the next manager sends it after a restart.

Revision ID: 0008_notifications
Revises: 0007_edit_reviews
Create Date: 2026-12-02
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008_notifications"
down_revision: str | None = "0007_edit_reviews"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

EVENT_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "notifications",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("event_id", EVENT_ID, nullable=False),
        sa.Column("job_id", sa.Integer(), nullable=True),
        sa.Column("topic", sa.String(32), nullable=False),
        sa.Column("channel", sa.String(16), nullable=False),
        sa.Column("target", sa.Text(), nullable=False),
        sa.Column("payload", sa.JSON().with_variant(sa.dialects.postgresql.JSONB(), "postgresql"), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_status", sa.String(200), nullable=True),
        sa.Column("last_response", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("delivered_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["event_id"], ["events.id"], name="fk_notifications_event_id_events", ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(["job_id"], ["jobs.id"], name="fk_notifications_job_id_jobs", ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name="pk_notifications"),
        sa.UniqueConstraint("event_id", "channel", "target", name="uq_notifications_event_id_channel_target"),
        sa.CheckConstraint("state IN ('pending', 'delivered', 'failed')", name="ck_notifications_state"),
        sa.CheckConstraint("channel IN ('webhook', 'slack', 'email')", name="ck_notifications_channel"),
    )
    op.create_index("ix_notifications_state_next_attempt_at", "notifications", ["state", "next_attempt_at"])
    op.create_index("ix_notifications_job_id", "notifications", ["job_id"])
    op.create_table(
        "notifier_cursor",
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("last_event_id", EVENT_ID, nullable=False),
        sa.PrimaryKeyConstraint("name", name="pk_notifier_cursor"),
    )


def downgrade() -> None:
    op.drop_table("notifier_cursor")
    op.drop_index("ix_notifications_job_id", table_name="notifications")
    op.drop_index("ix_notifications_state_next_attempt_at", table_name="notifications")
    op.drop_table("notifications")
