"""What every attempt ran on and how long it took, for the learned cost model (``farm.db.costs``).

- ``renders.model``, ``gpu_type``, ``width``, ``height``, ``frames``, ``steps``, ``levers``: the model, the
  GPU type its worker reported (``torch.cuda.get_device_name``, or ``FARM_GPU_TYPE``), the size, the step
  count and the render parameters (speed levers) the attempt ran with;
- ``renders.model_seconds``: the worker's busy time inside the model's render call (encoding included);
- ``renders.load_seconds``: how long its worker took to load the model;
- ``ix_renders_costs``: covers the cost model's aggregate, so learning the costs reads no attempt rows.

Revision ID: 0013_attempt_costs
Revises: 0012_shot_rollup_index
Create Date: 2026-12-03
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0013_attempt_costs"
down_revision: str | None = "0012_shot_rollup_index"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
COST_COLUMNS = ("state", "model", "gpu_type", "width", "height", "frames", "model_seconds", "load_seconds")
"""As ``farm.db.tables.COST_COLUMNS`` was when this revision was written (a migration never changes)."""


def upgrade() -> None:
    with op.batch_alter_table("renders") as batch:
        batch.add_column(sa.Column("model", sa.String(200), nullable=True))
        batch.add_column(sa.Column("gpu_type", sa.String(200), nullable=True))
        batch.add_column(sa.Column("width", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("height", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("frames", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("steps", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("levers", JSON, nullable=True))
        batch.add_column(sa.Column("model_seconds", sa.Float(), nullable=True))
        batch.add_column(sa.Column("load_seconds", sa.Float(), nullable=True))
    op.create_index("ix_renders_costs", "renders", list(COST_COLUMNS))


def downgrade() -> None:
    op.drop_index("ix_renders_costs", table_name="renders")
    with op.batch_alter_table("renders") as batch:
        for column in ("load_seconds", "model_seconds", "levers", "steps", "frames", "height", "width", "gpu_type"):
            batch.drop_column(column)
        batch.drop_column("model")
