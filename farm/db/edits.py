"""A job's edit versions: every assembly is kept (``edits/job-N/vNNN``), newest last, and a producer's
review of the newest one."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, select, update

from farm.db.columns import utcnow
from farm.db.errors import UnknownJob
from farm.db.events import event_row, write_events
from farm.db.kinds import EventKind, Review
from farm.db.machine import job_state_in
from farm.db.records import EditInfo, field_names, from_values
from farm.db.retry import transaction
from farm.db.session import Database
from farm.db.shots import retake_shot_in
from farm.db.states import IllegalTransition, JobState
from farm.db.tables import Edit, Job

_EDIT_FIELDS = field_names(EditInfo)


@transaction
def edit_versions(db: Database, job_id: int) -> tuple[EditInfo, ...]:
    """Every edit version of the job, oldest first (none before its first assembly)."""
    with db.read() as connection:
        if connection.execute(select(Job.c.id).where(Job.c.id == job_id)).scalar_one_or_none() is None:
            raise UnknownJob(f"job {job_id} is not in the database; `farm status` lists the jobs")
        rows = connection.execute(
            select(*(Edit.c[name] for name in _EDIT_FIELDS)).where(Edit.c.job_id == job_id).order_by(Edit.c.version)
        ).all()
    return tuple(from_values(EditInfo, _EDIT_FIELDS, db.paths.resolve_row(_EDIT_FIELDS, row)) for row in rows)


@transaction
def next_edit_version(db: Database, job_id: int) -> int:
    """The number the job's next edit gets: one past its newest recorded version (1 for its first).

    Numbers come from the rows, not from the version folders on disk, so an assembly that crashed before
    recording its edit costs no number: the next assembly takes it again (the job's driver lease
    serialises a job's assemblies, and ``edits``' unique (job, version) refuses a duplicate anyway)."""
    with db.read() as connection:
        newest = connection.execute(select(func.max(Edit.c.version)).where(Edit.c.job_id == job_id)).scalar_one()
    return (newest or 0) + 1


@dataclass(frozen=True)
class Rekeyed:
    """A done shot's new recipe: it goes back to the queue with this spec and cache key, and why."""

    shot_pk: int
    spec: dict[str, Any]
    cache_key: str
    reason: str


@transaction
def review_edit(
    db: Database,
    job_id: int,
    version: int,
    review: Review,
    *,
    comment: str,
    by: str,
    retakes: Sequence[Rekeyed] = (),
) -> EditInfo:
    """Record a producer's ``review`` of edit ``version`` and, for a retake, queue ``retakes`` again, all in
    one transaction with one ``edit.reviewed`` event (and one ``shot.requeued`` per shot): the job then
    waits for the farm, which renders them and assembles the next version.

    Refused (IllegalTransition) unless ``version`` is the job's newest edit and the job is finished (done,
    or failed for a retake): a version the farm is replacing, or a job still rendering, is not reviewed.
    """
    with db.write() as connection:
        state = job_state_in(connection, job_id)
        newest = connection.execute(select(func.max(Edit.c.version)).where(Edit.c.job_id == job_id)).scalar_one()
        if newest is None:
            raise IllegalTransition(f"job {job_id} has no edit yet; review it once `farm status {job_id}` shows one")
        if version != newest:
            raise IllegalTransition(
                f"edit v{version} of job {job_id} is not its newest (v{newest}); review v{newest} instead"
            )
        allowed = {JobState.DONE} if review is Review.APPROVED else {JobState.DONE, JobState.FAILED}
        if state not in allowed:
            raise IllegalTransition(
                f"job {job_id} is {state}; an edit is {review} once the job is {' or '.join(sorted(allowed))} "
                f"(farm status {job_id} --watch waits for it)"
            )
        now = utcnow()
        connection.execute(
            update(Edit)
            .where(Edit.c.job_id == job_id, Edit.c.version == version)
            .values(review=review, review_comment=comment or None, reviewed_by=by, reviewed_at=now)
        )
        shots = [retake.shot_pk for retake in retakes]
        write_events(
            connection,
            [
                event_row(
                    at=now,
                    by=by,
                    kind=EventKind.EDIT_REVIEWED,
                    job_id=job_id,
                    message=f"v{version} {review}" + (f": {comment}" if comment else ""),
                    data={"version": version, "review": review.value, "comment": comment, "shots": shots},
                )
            ],
        )
        for retake in retakes:
            if not retake_shot_in(
                connection, retake.shot_pk, spec=retake.spec, cache_key=retake.cache_key, by=by, reason=retake.reason
            ):
                raise IllegalTransition(f"shot {retake.spec.get('shot_id')} of job {job_id} is not done; retry it")
        row = connection.execute(
            select(*(Edit.c[name] for name in _EDIT_FIELDS)).where(Edit.c.job_id == job_id, Edit.c.version == version)
        ).one()
    return from_values(EditInfo, _EDIT_FIELDS, db.paths.resolve_row(_EDIT_FIELDS, row))


@transaction
def edits_with_content(db: Database, content_key: str, *, limit: int = 5) -> tuple[EditInfo, ...]:
    """The newest assembled edit versions (of any job) whose content key is ``content_key``, newest first:
    the candidates a run with the same edit inputs may re-use instead of assembling again. Versions that
    themselves re-use one are left out: they point at the same files as the one they name."""
    with db.read() as connection:
        rows = connection.execute(
            select(*(Edit.c[name] for name in _EDIT_FIELDS))
            .where(Edit.c.content_key == content_key, Edit.c.reused_from_id.is_(None))
            .order_by(Edit.c.id.desc())
            .limit(limit)
        ).all()
    return tuple(from_values(EditInfo, _EDIT_FIELDS, db.paths.resolve_row(_EDIT_FIELDS, row)) for row in rows)
