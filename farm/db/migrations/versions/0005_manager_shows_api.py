"""The farm manager: its lease, shows with shares, quotas and budgets, attempt logs, API tokens.

- ``manager_lease``: one row per role (``manager``); the live ``farm serve`` renews it, a standby takes it
  over when the heartbeat goes stale, so two managers never drive the farm at once.
- ``shows``: a show is a shot list's ``project``; its fair ``share`` of the GPUs (weighted, 1 by default),
  ``gpu_quota`` (most GPUs at once) and ``gpu_hour_budget`` (when spent its jobs are held).
- ``jobs.hold_reason``: why the manager is not rendering a job that is waiting (budget spent, ...).
- ``renders.log_path``: where the attempt's worker output, warnings and traceback were captured.
- ``api_tokens``: bearer tokens (stored as SHA-256, never in clear) with their role.
- ``idempotency_keys``: a retried submit with the same ``Idempotency-Key`` returns the first job.
- ``events.kind`` gains ``job.priority``, ``job.held``, ``manager.lease`` and ``show.changed``.

Revision ID: 0005_manager_shows_api
Revises: 0004_job_phases_and_vocabularies
Create Date: 2026-12-02
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005_manager_shows_api"
down_revision: str | None = "0004_job_phases_and_vocabularies"
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
)
EVENT_KINDS = (*OLD_EVENT_KINDS, "job.priority", "job.held", "manager.lease", "show.changed")
ROLES = ("editor", "producer", "admin")


def _within(column: str, values: Sequence[str]) -> str:
    return f"{column} IN ({', '.join(repr(value) for value in values)})"


def upgrade() -> None:
    op.create_table(
        "manager_lease",
        sa.Column("role", sa.String(200), nullable=False),
        sa.Column("holder", sa.String(200), nullable=True),
        sa.Column("heartbeat_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("since", sa.DateTime(timezone=True), nullable=True),
        sa.Column("api_url", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("role", name="pk_manager_lease"),
    )
    op.create_table(
        "shows",
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("share", sa.Float(), nullable=False, server_default=sa.text("1")),
        sa.Column("gpu_quota", sa.Integer(), nullable=True),
        sa.Column("gpu_hour_budget", sa.Float(), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("name", name="pk_shows"),
        sa.CheckConstraint("share > 0", name="ck_shows_share"),
    )
    op.create_table(
        "api_tokens",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("role", sa.String(16), nullable=False),
        sa.Column("token_sha256", sa.String(64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_api_tokens"),
        sa.UniqueConstraint("token_sha256", name="uq_api_tokens_token_sha256"),
        sa.CheckConstraint(_within("role", ROLES), name="ck_api_tokens_role"),
    )
    op.create_table(
        "idempotency_keys",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("key", sa.String(200), nullable=False),
        sa.Column("submitted_by", sa.String(200), nullable=False),
        sa.Column("request_sha256", sa.String(64), nullable=False),
        sa.Column("job_id", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["job_id"], ["jobs.id"], name="fk_idempotency_keys_job_id_jobs", ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name="pk_idempotency_keys"),
        sa.UniqueConstraint("submitted_by", "key", name="uq_idempotency_keys_submitted_by_key"),
    )
    with op.batch_alter_table("jobs") as batch:
        batch.add_column(sa.Column("hold_reason", sa.Text(), nullable=True))
    with op.batch_alter_table("renders") as batch:
        batch.add_column(sa.Column("log_path", sa.Text(), nullable=True))
    with op.batch_alter_table("events") as batch:
        batch.drop_constraint("ck_events_kind", type_="check")
        batch.create_check_constraint("ck_events_kind", _within("kind", EVENT_KINDS))


def downgrade() -> None:
    op.execute(f"DELETE FROM events WHERE NOT ({_within('kind', OLD_EVENT_KINDS)})")
    with op.batch_alter_table("events") as batch:
        batch.drop_constraint("ck_events_kind", type_="check")
        batch.create_check_constraint("ck_events_kind", _within("kind", OLD_EVENT_KINDS))
    with op.batch_alter_table("renders") as batch:
        batch.drop_column("log_path")
    with op.batch_alter_table("jobs") as batch:
        batch.drop_column("hold_reason")
    op.drop_table("idempotency_keys")
    op.drop_table("api_tokens")
    op.drop_table("shows")
    op.drop_table("manager_lease")
