"""Job phases after rendering, vocabularies under CHECK constraints, attempt timings, the audit name.

- ``jobs.state``: ``running`` becomes ``rendering``, and a job gains the phases that follow its shots
  (``assembling``, ``checking``, ``retaking``): ``done`` now means the edit exists. Existing rows move:
  running jobs are rendering; done jobs with no edit recorded are assembling (their next driver
  assembles them).
- ``artifacts.kind``, ``edits.verdict`` and ``events.kind`` were free text; a CHECK constraint now lists
  their values, so a misspelt kind is refused by the database.
- ``renders.timings``: seconds per stage of each attempt, as its worker measured them.
- ``events.actor`` is renamed ``changed_by``: "actor" means a Ray actor everywhere else in farm.

The value lists are written out here, not read from farm's enums, so this migration means tomorrow what
it means today.

Revision ID: 0004_job_phases_and_vocabularies
Revises: 0003_shot_render_seconds
Create Date: 2026-12-01
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0004_job_phases_and_vocabularies"
down_revision: str | None = "0003_shot_render_seconds"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
OLD_JOB_STATES = ("queued", "running", "done", "failed", "cancelled")
JOB_STATES = ("queued", "rendering", "assembling", "checking", "retaking", "done", "failed", "cancelled")
ARTIFACT_KINDS = ("shot_video", "last_frames")
VERDICTS = ("pass", "warn", "fail", "skip")
EVENT_KINDS = (
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


def _within(column: str, values: Sequence[str]) -> str:
    return f"{column} IN ({', '.join(repr(value) for value in values)})"


def upgrade() -> None:
    with op.batch_alter_table("jobs") as batch:
        batch.drop_constraint("ck_jobs_state", type_="check")
    op.execute("UPDATE jobs SET state = 'rendering' WHERE state = 'running'")
    op.execute(
        "UPDATE jobs SET state = 'assembling', finished_at = NULL "
        "WHERE state = 'done' AND NOT EXISTS (SELECT 1 FROM edits WHERE edits.job_id = jobs.id)"
    )
    with op.batch_alter_table("jobs") as batch:
        batch.create_check_constraint("ck_jobs_state", _within("state", JOB_STATES))
    with op.batch_alter_table("artifacts") as batch:
        batch.create_check_constraint("ck_artifacts_kind", _within("kind", ARTIFACT_KINDS))
    with op.batch_alter_table("edits") as batch:
        batch.create_check_constraint("ck_edits_verdict", _within("verdict", VERDICTS))
    with op.batch_alter_table("events") as batch:
        batch.alter_column("actor", new_column_name="changed_by", existing_type=sa.String(200), existing_nullable=False)
        batch.create_check_constraint("ck_events_kind", _within("kind", EVENT_KINDS))
    with op.batch_alter_table("renders") as batch:
        batch.add_column(sa.Column("timings", JSON, nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("renders") as batch:
        batch.drop_column("timings")
    with op.batch_alter_table("events") as batch:
        batch.drop_constraint("ck_events_kind", type_="check")
        batch.alter_column("changed_by", new_column_name="actor", existing_type=sa.String(200), existing_nullable=False)
    with op.batch_alter_table("edits") as batch:
        batch.drop_constraint("ck_edits_verdict", type_="check")
    with op.batch_alter_table("artifacts") as batch:
        batch.drop_constraint("ck_artifacts_kind", type_="check")
    with op.batch_alter_table("jobs") as batch:
        batch.drop_constraint("ck_jobs_state", type_="check")
    # The phases after rendering did not exist: a job making its edit is done (as it was before), one
    # about to render its retakes is queued.
    op.execute("UPDATE jobs SET state = 'running' WHERE state = 'rendering'")
    op.execute("UPDATE jobs SET state = 'done' WHERE state IN ('assembling', 'checking')")
    op.execute("UPDATE jobs SET state = 'queued' WHERE state = 'retaking'")
    with op.batch_alter_table("jobs") as batch:
        batch.create_check_constraint("ck_jobs_state", _within("state", OLD_JOB_STATES))
