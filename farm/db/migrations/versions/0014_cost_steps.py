"""The cost model keyed by step count too: a 4-step distilled shot costs a tenth of a 40-step one of the same
model, GPU and size, so the attempts' ``steps`` joins the covering index the cost model reads.

- ``ix_renders_costs``: recreated with ``steps`` (learning the costs still reads no attempt rows).

Revision ID: 0014_cost_steps
Revises: 0013_attempt_costs
Create Date: 2026-12-03
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0014_cost_steps"
down_revision: str | None = "0013_attempt_costs"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BEFORE = ("state", "model", "gpu_type", "width", "height", "frames", "model_seconds", "load_seconds")
AFTER = ("state", "model", "gpu_type", "width", "height", "steps", "frames", "model_seconds", "load_seconds")
"""As ``farm.db.tables.COST_COLUMNS`` was before and after this revision (a migration never changes)."""


def upgrade() -> None:
    op.drop_index("ix_renders_costs", table_name="renders")
    op.create_index("ix_renders_costs", "renders", list(AFTER))


def downgrade() -> None:
    op.drop_index("ix_renders_costs", table_name="renders")
    op.create_index("ix_renders_costs", "renders", list(BEFORE))
