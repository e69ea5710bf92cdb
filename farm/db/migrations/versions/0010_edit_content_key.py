"""An edit's content key and what it re-uses: ``edits.content_key`` and ``edits.reused_from_id``.

The content key is the identity of everything that decides an edit's files (its shots' cache keys in
order, their audio ranges, the loudness target, the check settings, the assembly's format version); a
later run whose edit would have the same key records a new version pointing at the existing files
(``reused_from_id``) instead of assembling again. Existing edits have no key and are never re-used.

Revision ID: 0010_edit_content_key
Revises: 0009_relative_artifact_paths
Create Date: 2026-12-02
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0010_edit_content_key"
down_revision: str | None = "0009_relative_artifact_paths"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("edits") as batch:
        batch.add_column(sa.Column("content_key", sa.String(64), nullable=True))
        batch.add_column(sa.Column("reused_from_id", sa.Integer(), nullable=True))
        batch.create_foreign_key(
            "fk_edits_reused_from_id_edits", "edits", ["reused_from_id"], ["id"], ondelete="SET NULL"
        )
        batch.create_index("ix_edits_content_key", ["content_key"])


def downgrade() -> None:
    with op.batch_alter_table("edits") as batch:
        batch.drop_index("ix_edits_content_key")
        batch.drop_constraint("fk_edits_reused_from_id_edits", type_="foreignkey")
        batch.drop_column("reused_from_id")
        batch.drop_column("content_key")
