"""Each shot's render time, so the status ETA reads the shots alone; an index for a job's shots by state.

``shots.render_seconds`` is the wall time of the attempt that rendered the shot's current artifact (0 for
a cache hit). Existing done shots get it from their current attempt. The index on (job_id, state) gains
edit_order, so a job's running or failed shots come back in edit order without a sort.

Revision ID: 0003_shot_render_seconds
Revises: 0002_edits_and_driver_lease
Create Date: 2026-05-10
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003_shot_render_seconds"
down_revision: str | None = "0002_edits_and_driver_lease"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

SECONDS_BETWEEN = {
    "sqlite": "(julianday(renders.finished_at) - julianday(renders.started_at)) * 86400.0",
    "postgresql": "CAST(EXTRACT(EPOCH FROM (renders.finished_at - renders.started_at)) AS DOUBLE PRECISION)",
}


def upgrade() -> None:
    with op.batch_alter_table("shots") as batch:
        batch.add_column(sa.Column("render_seconds", sa.Float(), server_default=sa.text("0"), nullable=False))
    seconds = SECONDS_BETWEEN[op.get_bind().dialect.name]
    op.execute(
        "UPDATE shots SET render_seconds = COALESCE(("
        f"SELECT {seconds} FROM renders WHERE renders.id = shots.current_render_id "
        "AND renders.state = 'succeeded' AND renders.finished_at IS NOT NULL), 0) "
        "WHERE shots.state = 'done' AND shots.cached = FALSE AND shots.current_render_id IS NOT NULL"
    )
    op.drop_index("ix_shots_job_id_state", table_name="shots")
    op.create_index("ix_shots_job_id_state_edit_order", "shots", ["job_id", "state", "edit_order"])


def downgrade() -> None:
    op.drop_index("ix_shots_job_id_state_edit_order", table_name="shots")
    op.create_index("ix_shots_job_id_state", "shots", ["job_id", "state"])
    with op.batch_alter_table("shots") as batch:
        batch.drop_column("render_seconds")
