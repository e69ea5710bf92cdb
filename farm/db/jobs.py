"""Jobs: submit one with its shots, move it through its phases, cancel it, retry its shots, reprioritise it.

The database knows nothing of shot lists or plans: a job arrives as a ``NewJob`` and its shots as
``NewShot`` records, built by the jobs layer (``farm.jobs.submit``) from a plan. A shot's ``spec`` is an
opaque JSON document to this layer; the driver rebuilds its render task from it.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from sqlalchemy import Connection, insert, select, update

from farm import defaults
from farm.db.columns import utcnow
from farm.db.errors import UnknownJob, UnknownShot
from farm.db.events import event_row, write_events, written_on_first_try
from farm.db.idempotency import IdempotencyClaim, claim_key
from farm.db.kinds import EventKind
from farm.db.machine import job_state_in, move_job
from farm.db.machine import settle_job as settle
from farm.db.products import NewEdit, insert_edit
from farm.db.retry import transaction
from farm.db.session import Database
from farm.db.shots import cancel_queued_shots, requeue_shots
from farm.db.states import FINISHED_JOB_STATES, IllegalTransition, JobState, ShotState
from farm.db.tables import Job, Shot


@dataclass(frozen=True)
class NewShot:
    shot_id: str
    scene_id: str
    edit_order: int
    spec: dict[str, Any]
    """Everything the driver needs to render the shot (the plan's task as JSON)."""
    cache_key: str
    frames: int


@dataclass(frozen=True)
class NewJob:
    project: str
    episode: str
    shot_list_path: str
    shot_list_sha256: str
    quality: str
    submitted_by: str
    priority: int = 0
    options: dict[str, Any] = field(default_factory=dict)
    """What the job was submitted with beyond its shots (continuity settings, title, ...)."""


@transaction
def submit_job(
    db: Database, job: NewJob, shots: Sequence[NewShot], *, idempotency: IdempotencyClaim | None = None
) -> int:
    """A queued job with its shots queued; returns the job id a person will type.

    ``idempotency``: the submit's key, recorded with the job in its transaction (IdempotencyKeyTaken, and no
    job, if a concurrent submit recorded the same key first: ``farm.db.idempotency.keyed_job`` reads its job).
    """
    now = utcnow()
    name = job.shot_list_path.replace("\\", "/").rsplit("/", 1)[-1]
    message = f"submitted {name}: {len(shots)} shots, {job.quality}, priority {job.priority}"
    with db.write() as connection:
        earlier = written_on_first_try(connection, by=job.submitted_by, kind=EventKind.JOB_SUBMITTED, message=message)
        if earlier is not None:  # the first try committed before its connection died: that is this submit's job
            return int(earlier.job_id)
        job_id = connection.execute(
            insert(Job)
            .values(
                project=job.project,
                episode=job.episode,
                shot_list_path=job.shot_list_path,
                shot_list_sha256=job.shot_list_sha256,
                quality=job.quality,
                priority=job.priority,
                state=JobState.QUEUED,
                options=job.options,
                submitted_by=job.submitted_by,
                submitted_at=now,
                updated_at=now,
            )
            .returning(Job.c.id)
        ).scalar_one()
        if idempotency is not None:
            claim_key(connection, idempotency, job_id)
        shot_pks = _insert_shots(connection, job_id, shots, now)
        events = [
            event_row(
                at=now,
                by=job.submitted_by,
                kind=EventKind.JOB_SUBMITTED,
                job_id=job_id,
                new=JobState.QUEUED,
                message=message,
                data={"shot_list": job.shot_list_path, "sha256": job.shot_list_sha256},
            )
        ]
        events += [
            event_row(
                at=now,
                by=job.submitted_by,
                kind=EventKind.SHOT_CREATED,
                job_id=job_id,
                shot_pk=pk,
                new=ShotState.QUEUED,
            )
            for pk in shot_pks
        ]
        write_events(connection, events)
    return job_id


def _insert_shots(connection: Any, job_id: int, shots: Sequence[NewShot], now: Any) -> list[int]:
    if not shots:
        return []
    rows = [
        {
            "job_id": job_id,
            "shot_id": shot.shot_id,
            "scene_id": shot.scene_id,
            "edit_order": shot.edit_order,
            "spec": shot.spec,
            "cache_key": shot.cache_key,
            "frames": shot.frames,
            "state": ShotState.QUEUED,
            "cached": False,
            "attempts": 0,
            "gpu_seconds": 0.0,
            "updated_at": now,
        }
        for shot in shots
    ]
    result = connection.execute(insert(Shot).returning(Shot.c.id, sort_by_parameter_order=True), rows)
    return list(result.scalars())


@transaction
def transition_job(
    db: Database,
    job_id: int,
    to: JobState,
    *,
    by: str,
    message: str = "",
    expected: Iterable[JobState] | None = None,
) -> JobState:
    """Move a job to ``to`` in one transaction (``farm.db.machine.move_job``); returns the state it left."""
    with db.write() as connection:
        earlier = _moved_earlier(connection, job_id, JobState(to), by=by)
        if earlier is not None:
            return earlier
        return move_job(connection, job_id, JobState(to), by=by, message=message, expected=expected)


@transaction
def settle_job(db: Database, job_id: int, *, by: str) -> JobState:
    """Bring the job's state in line with its shots (``farm.db.machine.settle_job``); returns it."""
    with db.write() as connection:
        return settle(connection, job_id, by=by)


@transaction
def cancel_job(db: Database, job_id: int, *, by: str) -> int:
    """Cancel a job and its queued shots; returns how many shots were cancelled.

    Running shots stay running: their driver sees the job is cancelled and finishes their attempts as
    cancelled (it owns them; this process does not).
    """
    with db.write() as connection:
        if _moved_earlier(connection, job_id, JobState.CANCELLED, by=by) is not None:
            return _count_shots(connection, job_id, ShotState.CANCELLED)
        state = job_state_in(connection, job_id)
        if state in FINISHED_JOB_STATES:
            raise IllegalTransition(f"job {job_id} is already {state}; there is nothing to cancel")
        move_job(connection, job_id, JobState.CANCELLED, by=by, message=f"cancelled by {by}")
        return len(cancel_queued_shots(connection, job_id, by=by))


@transaction
def abandon_unstarted_job(db: Database, job_id: int, *, reason: str, by: str) -> int:
    """Cancel a queued job whose driver could not be started, and its queued shots, with ``reason`` on the
    job's event, in one transaction: no job is left queued for a driver that never comes, and none is
    cancelled without saying why. LostRace if the job is no longer queued (a driver took it after all).
    Returns how many shots were cancelled."""
    with db.write() as connection:
        move_job(connection, job_id, JobState.CANCELLED, by=by, message=reason[:2000], expected={JobState.QUEUED})
        return len(cancel_queued_shots(connection, job_id, by=by))


@transaction
def retry_job(db: Database, job_id: int, *, by: str, shot_ids: Sequence[str] | None = None) -> int:
    """Requeue a job's failed and cancelled shots (or exactly ``shot_ids``, which may also name done shots:
    a retake by hand); a finished job with work queued again is queued itself. Returns how many shots
    were requeued.

    Refused while a live driver assembles or checks the job's edit (it would assemble shots that are no
    longer done): wait for it, or cancel the job first. A job left assembling by a driver that died (a
    shot's video went missing, say) may be retried: it is queued again.
    """
    with db.write() as connection:
        state = job_state_in(connection, job_id)
        if state in (JobState.ASSEMBLING, JobState.CHECKING) and _driver_is_live(connection, job_id):
            raise IllegalTransition(
                f"job {job_id} is {state} its edit; wait for it to finish (farm status {job_id} --watch) "
                f"or cancel it first (farm cancel {job_id})"
            )
        sources = [ShotState.FAILED, ShotState.CANCELLED]
        if shot_ids is not None:
            _check_named_shots(connection, job_id, shot_ids)
            sources.append(ShotState.DONE)
        return len(requeue_shots(connection, job_id, sources, by=by, shot_ids=shot_ids))


@transaction
def set_priority(db: Database, job_id: int, priority: int, *, by: str) -> int:
    """Give a job a new priority (higher runs first), with a ``job.priority`` event; returns the old one.

    Not a state: the job stays where it is, and the manager orders its waiting shots by the new value.
    """
    with db.write() as connection:
        old = connection.execute(select(Job.c.priority).where(Job.c.id == job_id)).scalar_one_or_none()
        if old is None:
            raise UnknownJob(f"job {job_id} is not in the database; `farm status` lists the jobs")
        if old != priority:
            now = utcnow()
            connection.execute(update(Job).where(Job.c.id == job_id).values(priority=priority, updated_at=now))
            write_events(
                connection,
                [
                    event_row(
                        at=now,
                        by=by,
                        kind=EventKind.JOB_PRIORITY,
                        job_id=job_id,
                        message=f"priority {old} -> {priority}",
                        data={"before": old, "after": priority},
                    )
                ],
            )
    return int(old)


@transaction
def job_record(db: Database, job_id: int) -> NewJob:
    """The job as it was submitted (its shot list, quality, submitter, priority now, options)."""
    with db.read() as connection:
        row = connection.execute(
            select(
                Job.c.project,
                Job.c.episode,
                Job.c.shot_list_path,
                Job.c.shot_list_sha256,
                Job.c.quality,
                Job.c.submitted_by,
                Job.c.priority,
                Job.c.options,
            ).where(Job.c.id == job_id)
        ).one_or_none()
    if row is None:
        raise UnknownJob(f"job {job_id} is not in the database; `farm status` lists the jobs")
    return NewJob(
        project=row.project,
        episode=row.episode,
        shot_list_path=row.shot_list_path,
        shot_list_sha256=row.shot_list_sha256,
        quality=row.quality,
        submitted_by=row.submitted_by,
        priority=row.priority,
        options=dict(row.options or {}),
    )


@transaction
def record_checked_edit(db: Database, job_id: int, edit: NewEdit, *, retaking: bool, by: str) -> tuple[int, int]:
    """Record a checked edit version and end the job's checking phase with it, in one transaction:
    ``done`` (the edit exists), or ``retaking`` when its checks asked for shots to render again.

    Returns (edit id, version).
    """
    to = JobState.RETAKING if retaking else JobState.DONE
    with db.write() as connection:
        if _moved_earlier(connection, job_id, to, by=by) is not None:  # a retry whose first try committed
            return insert_edit(connection, job_id, edit, by=by, paths=db.paths)  # the edit it recorded
        recorded = insert_edit(connection, job_id, edit, by=by, paths=db.paths)
        move_job(connection, job_id, to, by=by, message=f"edit v{recorded[1]}: continuity {edit.verdict}",
                 expected={JobState.CHECKING})  # fmt: skip
    return recorded


def _moved_earlier(connection: Connection, job_id: int, to: JobState, *, by: str) -> JobState | None:
    """On a retry (``rerun_since``) whose first try moved the job to ``to`` and committed before its
    connection died: the state it left (what the first try would have returned). None otherwise."""
    moved = written_on_first_try(connection, by=by, kind=EventKind.JOB_STATE, job_id=job_id)
    if moved is None or moved.new_state != to.value or job_state_in(connection, job_id) is not to:
        return None
    return JobState(moved.old_state)


def _count_shots(connection: Connection, job_id: int, state: ShotState) -> int:
    return len(connection.execute(select(Shot.c.id).where(Shot.c.job_id == job_id, Shot.c.state == state)).all())


def _driver_is_live(connection: Connection, job_id: int) -> bool:
    """A driver holds the job's lease and its heartbeat is fresh (farm.defaults' staleness)."""
    stale = utcnow() - timedelta(seconds=defaults.STALE_AFTER_HEARTBEATS * defaults.HEARTBEAT_SECONDS)
    beat = connection.execute(
        select(Job.c.driver_heartbeat_at).where(Job.c.id == job_id, Job.c.driver_id.is_not(None))
    ).scalar_one_or_none()
    return beat is not None and beat > stale


def _check_named_shots(connection: Any, job_id: int, shot_ids: Iterable[str]) -> None:
    states = dict(
        connection.execute(
            select(Shot.c.shot_id, Shot.c.state).where(Shot.c.job_id == job_id, Shot.c.shot_id.in_(list(shot_ids)))
        ).all()
    )
    missing = sorted(set(shot_ids) - set(states))
    if missing:
        raise UnknownShot(f"job {job_id} has no shot {', '.join(missing)}; `farm status {job_id}` lists its shots")
    running = sorted(shot for shot, state in states.items() if state is ShotState.RUNNING)
    if running:
        raise IllegalTransition(
            f"shot {', '.join(running)} of job {job_id} is running; wait for it to finish or cancel the job first"
        )
