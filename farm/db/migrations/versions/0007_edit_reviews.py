"""A producer's review of an edit version: ``edits.review`` (approved | retake), its comment, who and when.

The review is what turns a finished render into a producer's status: an edit that passed its checks waits
for approval; approved, it is done; sent back, the named shots render again. ``events.kind`` gains
``edit.reviewed``. Existing edits have no review.

Revision ID: 0007_edit_reviews
Revises: 0006_shot_retake_reason
Create Date: 2026-12-02
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007_edit_reviews"
down_revision: str | None = "0006_shot_retake_reason"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

OLD_EVENT_KINDS = (
    "job.submitted",
    "job.state",
    "job.driver",
    "shot.created",
    "shot.started",
    "shot.finished",
    "shot.cached",
    "shot.cancelled",
    "shot.requeued",
    "shot.recovered",
    "shot.failed",
    "node.blocklisted",
    "render.finished",
    "edit.recorded",
    "job.priority",
    "job.held",
    "manager.lease",
    "show.changed",
)
EVENT_KINDS = (*OLD_EVENT_KINDS, "edit.reviewed")
REVIEWS = ("approved", "retake")


def _within(column: str, values: Sequence[str]) -> str:
    return f"{column} IN ({', '.join(repr(value) for value in values)})"


def upgrade() -> None:
    with op.batch_alter_table("edits") as batch:
        batch.add_column(sa.Column("review", sa.String(32), nullable=True))
        batch.add_column(sa.Column("review_comment", sa.Text(), nullable=True))
        batch.add_column(sa.Column("reviewed_by", sa.String(200), nullable=True))
        batch.add_column(sa.Column("reviewed_at", sa.DateTime(timezone=True), nullable=True))
        batch.create_check_constraint("ck_edits_review", _within("review", REVIEWS))
    with op.batch_alter_table("events") as batch:
        batch.drop_constraint("ck_events_kind", type_="check")
        batch.create_check_constraint("ck_events_kind", _within("kind", EVENT_KINDS))


def downgrade() -> None:
    op.execute(f"DELETE FROM events WHERE NOT ({_within('kind', OLD_EVENT_KINDS)})")
    with op.batch_alter_table("events") as batch:
        batch.drop_constraint("ck_events_kind", type_="check")
        batch.create_check_constraint("ck_events_kind", _within("kind", OLD_EVENT_KINDS))
    with op.batch_alter_table("edits") as batch:
        batch.drop_constraint("ck_edits_review", type_="check")
        batch.drop_column("reviewed_at")
        batch.drop_column("reviewed_by")
        batch.drop_column("review_comment")
        batch.drop_column("review")
