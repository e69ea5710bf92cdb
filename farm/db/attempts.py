"""Reading a job's render attempts: every try at a shot, with where its worker's output was captured.

An attempt is a ``renders`` row, never reused, so a shot's history is its attempts in order. ``farm logs``
and the HTTP API read them here; the engine writes them (``farm.db.shots``).
"""

from __future__ import annotations

from sqlalchemy import Connection, select

from farm.db.errors import UnknownJob, UnknownShot
from farm.db.records import AttemptRecord
from farm.db.retry import transaction
from farm.db.session import Database
from farm.db.tables import Job, Render, Shot


@transaction
def shot_attempts(
    db: Database, job_id: int, *, shot_id: str | None = None, attempt_no: int | None = None
) -> tuple[AttemptRecord, ...]:
    """The job's attempts in edit order, then attempt order: every shot's, or ``shot_id``'s, or only
    attempt ``attempt_no``. UnknownJob, or UnknownShot naming what the job does have."""
    statement = (
        select(
            Shot.c.shot_id,
            Render.c.id,
            Render.c.attempt_no,
            Render.c.state,
            Render.c.worker,
            Render.c.node,
            Render.c.device,
            Render.c.started_at,
            Render.c.finished_at,
            Render.c.progress,
            Render.c.phase,
            Render.c.error_class,
            Render.c.error_message,
            Render.c.gpu_seconds,
            Render.c.warnings,
            Render.c.timings,
            Render.c.log_path,
        )
        .select_from(Render)
        .join(Shot, Shot.c.id == Render.c.shot_id)
        .where(Shot.c.job_id == job_id)
        .order_by(Shot.c.edit_order, Render.c.attempt_no)
    )
    if shot_id is not None:
        statement = statement.where(Shot.c.shot_id == shot_id)
    if attempt_no is not None:
        statement = statement.where(Render.c.attempt_no == attempt_no)
    with db.read() as connection:
        _require_job(connection, job_id)
        if shot_id is not None:
            _require_shot(connection, job_id, shot_id)
        rows = connection.execute(statement).all()
    if attempt_no is not None and not rows:
        subject = f"shot {shot_id} of job {job_id}" if shot_id is not None else f"job {job_id}"
        raise UnknownShot(f"{subject} has had no attempt {attempt_no}; `farm logs {job_id}` lists the attempts")
    return tuple(
        AttemptRecord(
            shot_id=row.shot_id,
            render_id=row.id,
            attempt_no=row.attempt_no,
            state=str(row.state),
            worker=row.worker,
            node=row.node,
            device=row.device,
            started_at=row.started_at,
            finished_at=row.finished_at,
            progress=row.progress,
            phase=row.phase,
            error_class=row.error_class,
            error_message=row.error_message,
            gpu_seconds=row.gpu_seconds,
            warnings=tuple(row.warnings) if row.warnings is not None else None,
            timings=row.timings,
            log_path=db.paths.to_absolute(row.log_path),
        )
        for row in rows
    )


def _require_job(connection: Connection, job_id: int) -> None:
    if connection.execute(select(Job.c.id).where(Job.c.id == job_id)).scalar_one_or_none() is None:
        raise UnknownJob(f"job {job_id} is not in the database; `farm status` lists the jobs")


def _require_shot(connection: Connection, job_id: int, shot_id: str) -> None:
    found = select(Shot.c.id).where(Shot.c.job_id == job_id, Shot.c.shot_id == shot_id)
    if connection.execute(found).scalar_one_or_none() is None:
        raise UnknownShot(f"job {job_id} has no shot {shot_id}; `farm status {job_id}` lists its shots")
