"""A covering index for the status rollups: counting a job's shots never reads their rows.

The rollups behind ``farm status``, the jobs page and the metrics count a job's shots per state, scene and
job, with their frames and GPU time. Each shot row also holds its planned task (about 1.5 KB), so scanning
the rows read about 15 MB for a 10,000-shot job; this index holds every column the rollups read.

Revision ID: 0012_shot_rollup_index
Revises: 0011_render_claims
Create Date: 2026-12-03
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0012_shot_rollup_index"
down_revision: str | None = "0011_render_claims"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

COLUMNS = (
    "job_id", "scene_id", "state", "cached", "frames", "gpu_seconds", "render_seconds", "current_render_id",
    "edit_order",
)  # fmt: skip
"""As ``farm.db.tables.ROLLUP_COLUMNS`` was when this revision was written (a migration never changes)."""


def upgrade() -> None:
    op.create_index("ix_shots_rollup", "shots", list(COLUMNS))


def downgrade() -> None:
    op.drop_index("ix_shots_rollup", table_name="shots")
