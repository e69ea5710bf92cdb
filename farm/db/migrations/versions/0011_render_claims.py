"""One render per cache key, farm-wide: ``render_claims``, and the ``shot.waiting`` event.

An attempt claims its shot's cache key in the same transaction that starts it; the row names the attempt
(its render id, the fencing token), the process that dispatched it and when the claim lapses unless renewed.
Another job's shot that needs the key waits (``shot.waiting``) and is served from the cache when it lands.

Revision ID: 0011_render_claims
Revises: 0010_edit_content_key
Create Date: 2026-12-03
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0011_render_claims"
down_revision: str | None = "0010_edit_content_key"
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
    "edit.reviewed",
)
EVENT_KINDS = (*OLD_EVENT_KINDS, "shot.waiting")


def _within(column: str, values: Sequence[str]) -> str:
    return f"{column} IN ({', '.join(repr(value) for value in values)})"


def upgrade() -> None:
    op.create_table(
        "render_claims",
        sa.Column("cache_key", sa.String(64), nullable=False),
        sa.Column("render_id", sa.Integer(), nullable=False),
        sa.Column("holder", sa.String(200), nullable=False),
        sa.Column("claimed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["render_id"], ["renders.id"], name="fk_render_claims_render_id_renders", ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("cache_key", name="pk_render_claims"),
    )
    with op.batch_alter_table("events") as batch:
        batch.drop_constraint("ck_events_kind", type_="check")
        batch.create_check_constraint("ck_events_kind", _within("kind", EVENT_KINDS))


def downgrade() -> None:
    op.execute(f"DELETE FROM events WHERE NOT ({_within('kind', OLD_EVENT_KINDS)})")
    with op.batch_alter_table("events") as batch:
        batch.drop_constraint("ck_events_kind", type_="check")
        batch.create_check_constraint("ck_events_kind", _within("kind", OLD_EVENT_KINDS))
    op.drop_table("render_claims")
