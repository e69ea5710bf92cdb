"""Why a shot was retaken: ``shots.retake_reason``.

A continuity retake chooses how to render a shot again by what failed (a new seed, the previous shot
of the person to continue, the reference portrait instead of the continued frames, a rung of the
model's escalation ladder) and says why; the shot keeps that sentence beside its new recipe, for
``farm status``. Existing shots have none.

Revision ID: 0006_shot_retake_reason
Revises: 0005_manager_shows_api
Create Date: 2026-12-20
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006_shot_retake_reason"
down_revision: str | None = "0005_manager_shows_api"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("shots") as batch:
        batch.add_column(sa.Column("retake_reason", sa.Text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("shots") as batch:
        batch.drop_column("retake_reason")
