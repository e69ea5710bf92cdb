"""A covering index for the shot listing on SQLite: every shot of a job in edit order without its row.

``farm status JOB --json`` and the job page list every shot of a job in edit order. Each shot row also holds
its planned task (about 1.5 KB), so SQLite read about 15 MB for a 10,000-shot job; this index holds every
shot column the listing reads. PostgreSQL gets none: its listing is a hash join over few pages, and a
B-tree entry there may not exceed a third of a page, which a long ``last_error`` could.

Revision ID: 0015_shot_listing_index
Revises: 0014_cost_steps
Create Date: 2026-12-03
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0015_shot_listing_index"
down_revision: str | None = "0014_cost_steps"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

COLUMNS = (
    "job_id", "edit_order", "id", "shot_id", "scene_id", "state", "cached", "attempts", "frames", "cache_key",
    "gpu_seconds", "render_seconds", "current_render_id", "artifact_id", "last_error", "retake_reason",
)  # fmt: skip
"""As ``farm.db.tables.LISTING_COLUMNS`` was when this revision was written (a migration never changes)."""


def _sqlite() -> bool:
    return op.get_bind().dialect.name == "sqlite"


def upgrade() -> None:
    if _sqlite():
        op.create_index("ix_shots_listing", "shots", list(COLUMNS))


def downgrade() -> None:
    if _sqlite():
        op.drop_index("ix_shots_listing", table_name="shots")
