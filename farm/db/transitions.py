"""Every change of state a job, shot or render attempt goes through: one function, one transaction, one event.

Each transition is a conditional UPDATE (compare-and-set): ``... WHERE id = :id AND state = :expected``.
If no row matched, someone else got there first and the caller hears so (LostRace, or False where a
late arrival is expected and harmless); nothing is written. Finishing an attempt is fenced by the shot's
``current_render_id``, so a late "finished" from an attempt that lost its node cannot overwrite the shot
after it was handed to another worker. The event row is inserted in the same transaction as the change,
so the audit log never disagrees with the tables.

SQLite serialises these transactions (BEGIN IMMEDIATE + busy timeout); on PostgreSQL a concurrent UPDATE
of the same row waits and then re-checks the WHERE clause, so exactly one of two racing writers wins.
"""

from __future__ import annotations

import dataclasses
import enum
from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, func, insert, literal, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import IntegrityError

from farm.db.columns import UTCDateTime, seconds_between, utcnow
from farm.db.errors import UnknownJob, UnknownShot
from farm.db.models import Artifact, Edit, Event, Job, Render, Shot
from farm.db.queries import find_artifact
from farm.db.session import Database
from farm.db.states import (
    FINISHED_JOB_STATES,
    AttemptState,
    IllegalTransition,
    JobState,
    LostRace,
    ShotState,
    check_attempt_outcome,
    check_job_transition,
    check_shot_transition,
)
from farm.plan import Plan

__all__ = [
    "ArtifactRecord",
    "EventKind",
    "cancel_job",
    "claim_driver",
    "fail_unrenderable",
    "find_artifact",
    "finish_attempt",
    "heartbeat",
    "mark_cached",
    "record_artifact",
    "record_edit",
    "record_event",
    "recover_orphans",
    "release_driver",
    "report_progress",
    "retake_shot",
    "retry_job",
    "start_attempt",
    "submit_job",
    "transition_job",
    "transition_shot",
]

_CAS_RETRIES = 5


@dataclasses.dataclass(frozen=True)
class ArtifactRecord:
    """A file in the artifact store, as recorded in the artifacts table."""

    cache_key: str
    kind: str
    path: str
    bytes: int
    sha256: str
    frames: int | None = None
    duration: float | None = None


"""How often a read-then-compare-and-set on a job re-reads after losing to a concurrent writer."""


class EventKind(enum.StrEnum):
    JOB_SUBMITTED = "job.submitted"
    JOB_STATE = "job.state"
    JOB_DRIVER = "job.driver"
    SHOT_CREATED = "shot.created"
    SHOT_STARTED = "shot.started"
    SHOT_FINISHED = "shot.finished"
    SHOT_CACHED = "shot.cached"
    SHOT_CANCELLED = "shot.cancelled"
    SHOT_REQUEUED = "shot.requeued"
    SHOT_RECOVERED = "shot.recovered"
    SHOT_FAILED = "shot.failed"
    NODE_BLOCKLISTED = "node.blocklisted"
    RENDER_FINISHED = "render.finished"
    EDIT_RECORDED = "edit.recorded"


def _event(
    *,
    at: datetime,
    actor: str,
    kind: EventKind,
    job_id: int | None,
    shot_id: int | None = None,
    render_id: int | None = None,
    old: enum.StrEnum | None = None,
    new: enum.StrEnum | None = None,
    message: str = "",
    data: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """One row for the events table (every row has every key, so a list of them inserts in one batch)."""
    return {
        "at": at,
        "actor": actor,
        "kind": kind.value,
        "job_id": job_id,
        "shot_id": shot_id,
        "render_id": render_id,
        "old_state": old.value if old is not None else None,
        "new_state": new.value if new is not None else None,
        "message": message,
        "data": data,
    }


def _write_events(connection: Connection, events: Sequence[dict[str, Any]]) -> None:
    if events:
        connection.execute(insert(Event), list(events))


# --- jobs -------------------------------------------------------------------------------------------------


def submit_job(
    db: Database,
    plan: Plan,
    *,
    submitted_by: str,
    priority: int = 0,
    quality: str,
    options: dict[str, Any] | None = None,
) -> int:
    """A queued job with one queued shot per task of ``plan``; returns the job id a person will type."""
    now = utcnow()
    with db.write() as connection:
        job_id = connection.execute(
            insert(Job)
            .values(
                project=plan.project,
                episode=plan.episode,
                shot_list_path=str(plan.shot_list),
                shot_list_sha256=plan.shot_list_sha256,
                quality=quality,
                priority=priority,
                state=JobState.QUEUED,
                options=options or {},
                submitted_by=submitted_by,
                submitted_at=now,
                updated_at=now,
            )
            .returning(Job.id)
        ).scalar_one()
        shot_pks = _insert_shots(connection, job_id, plan, now)
        events = [
            _event(
                at=now,
                actor=submitted_by,
                kind=EventKind.JOB_SUBMITTED,
                job_id=job_id,
                new=JobState.QUEUED,
                message=f"submitted {plan.shot_list.name}: {len(plan.tasks)} shots, {quality}, priority {priority}",
                data={"shot_list": str(plan.shot_list), "sha256": plan.shot_list_sha256},
            )
        ]
        events += [
            _event(
                at=now, actor=submitted_by, kind=EventKind.SHOT_CREATED, job_id=job_id, shot_id=pk, new=ShotState.QUEUED
            )
            for pk in shot_pks
        ]
        _write_events(connection, events)
    return job_id


def _insert_shots(connection: Connection, job_id: int, plan: Plan, now: datetime) -> list[int]:
    if not plan.tasks:
        return []
    rows = [
        {
            "job_id": job_id,
            "shot_id": task.shot_id,
            "scene_id": task.scene_id,
            "edit_order": task.order,
            "spec": task.to_json(),
            "cache_key": task.cache_key,
            "frames": task.frames,
            "state": ShotState.QUEUED,
            "cached": False,
            "attempts": 0,
            "gpu_seconds": 0.0,
            "updated_at": now,
        }
        for task in plan.tasks
    ]
    result = connection.execute(insert(Shot).returning(Shot.id, sort_by_parameter_order=True), rows)
    return list(result.scalars())


def transition_job(
    db: Database,
    job_id: int,
    to: JobState,
    *,
    actor: str,
    message: str = "",
    expected: set[JobState] | None = None,
) -> JobState:
    """Move a job to ``to``; returns the state it left. ``expected``: the states the caller believes it is in
    (LostRace if it is not). Sets started_at on the first start and finished_at when it finishes."""
    with db.write() as connection:
        return _transition_job(connection, job_id, JobState(to), actor=actor, message=message, expected=expected)


def _transition_job(
    connection: Connection,
    job_id: int,
    to: JobState,
    *,
    actor: str,
    message: str,
    expected: set[JobState] | None = None,
) -> JobState:
    now = utcnow()
    values: dict[str, Any] = {"state": to, "updated_at": now}
    if to is JobState.RUNNING:
        values.update(started_at=func.coalesce(Job.started_at, now), finished_at=None)
    elif to in FINISHED_JOB_STATES:
        values["finished_at"] = now
    else:
        values["finished_at"] = None
    for _ in range(_CAS_RETRIES):
        current = connection.execute(select(Job.state).where(Job.id == job_id)).scalar_one_or_none()
        if current is None:
            raise UnknownJob(f"job {job_id} is not in the database; `farm status` lists the jobs")
        if expected is not None and current not in expected:
            raise LostRace(f"job {job_id} is {current}, not {_names(expected)}: someone else changed it first")
        check_job_transition(current, to, f"job {job_id}")
        changed = connection.execute(
            update(Job).where(Job.id == job_id, Job.state == current).values(**values)
        ).rowcount
        if changed == 1:
            event = _event(
                at=now, actor=actor, kind=EventKind.JOB_STATE, job_id=job_id, old=current, new=to, message=message
            )
            _write_events(connection, [event])
            return current
    raise LostRace(f"job {job_id} kept changing while {actor} tried to move it to {to}; try again")


def cancel_job(db: Database, job_id: int, *, actor: str) -> int:
    """Cancel a job and its queued shots; returns how many shots were cancelled.

    Running shots stay running: their driver sees the job is cancelled and finishes their attempts as
    cancelled (it owns them; this process does not).
    """
    now = utcnow()
    with db.write() as connection:
        _transition_job(connection, job_id, JobState.CANCELLED, actor=actor, message=f"cancelled by {actor}")
        cancelled = connection.execute(
            update(Shot)
            .where(Shot.job_id == job_id, Shot.state == ShotState.QUEUED)
            .values(state=ShotState.CANCELLED, updated_at=now)
            .returning(Shot.id)
        ).scalars()
        events = [
            _event(
                at=now,
                actor=actor,
                kind=EventKind.SHOT_CANCELLED,
                job_id=job_id,
                shot_id=pk,
                old=ShotState.QUEUED,
                new=ShotState.CANCELLED,
                message="job cancelled",
            )
            for pk in cancelled
        ]
        _write_events(connection, events)
    return len(events)


def retry_job(db: Database, job_id: int, *, actor: str, shot_ids: list[str] | None = None) -> int:
    """Requeue a job's failed and cancelled shots (or exactly ``shot_ids``, which may also name done shots:
    a retake); requeue the job itself if it had finished with work left. Returns how many shots were requeued.

    Resetting attempt budgets is the scheduler's business; the attempt count here keeps counting.
    """
    now = utcnow()
    with db.write() as connection:
        job_state = connection.execute(select(Job.state).where(Job.id == job_id)).scalar_one_or_none()
        if job_state is None:
            raise UnknownJob(f"job {job_id} is not in the database; `farm status` lists the jobs")
        conditions = [Shot.job_id == job_id]
        sources = [ShotState.FAILED, ShotState.CANCELLED]
        if shot_ids is not None:
            _check_named_shots(connection, job_id, shot_ids)
            conditions.append(Shot.shot_id.in_(shot_ids))
            sources.append(ShotState.DONE)
        events: list[dict[str, Any]] = []
        for source in sources:
            requeued = connection.execute(
                update(Shot)
                .where(*conditions, Shot.state == source)
                .values(state=ShotState.QUEUED, cached=False, updated_at=now)
                .returning(Shot.id)
            ).scalars()
            events += [
                _event(
                    at=now,
                    actor=actor,
                    kind=EventKind.SHOT_REQUEUED,
                    job_id=job_id,
                    shot_id=pk,
                    old=source,
                    new=ShotState.QUEUED,
                    message="retake" if source is ShotState.DONE else "retry",
                )
                for pk in requeued
            ]
        _write_events(connection, events)
        if job_state in FINISHED_JOB_STATES and _has_unfinished_work(connection, job_id):
            _transition_job(connection, job_id, JobState.QUEUED, actor=actor, message=f"retried by {actor}")
    return len(events)


def _check_named_shots(connection: Connection, job_id: int, shot_ids: Iterable[str]) -> None:
    states = dict(
        connection.execute(
            select(Shot.shot_id, Shot.state).where(Shot.job_id == job_id, Shot.shot_id.in_(list(shot_ids)))
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


def _has_unfinished_work(connection: Connection, job_id: int) -> bool:
    pending = select(Shot.id).where(Shot.job_id == job_id, Shot.state != ShotState.DONE).limit(1)
    return connection.execute(pending).first() is not None


def heartbeat(db: Database, job_id: int, driver_id: str) -> None:
    """Record that ``driver_id`` is alive and driving ``job_id`` (a change of driver is logged as an event)."""
    now = utcnow()
    with db.write() as connection:
        same_driver = connection.execute(
            update(Job).where(Job.id == job_id, Job.driver_id == driver_id).values(driver_heartbeat_at=now)
        ).rowcount
        if same_driver:
            return
        _take_over(connection, job_id, driver_id, now, [Job.id == job_id])


def claim_driver(db: Database, job_id: int, driver_id: str, *, stale_after: float) -> bool:
    """Become the driver of ``job_id`` unless another driver's heartbeat is younger than ``stale_after`` s.

    Compare-and-set, so two drivers resuming the same job at once cannot both win.
    """
    now = utcnow()
    with db.write() as connection:
        free = or_(
            Job.driver_id.is_(None),
            Job.driver_id == driver_id,
            Job.driver_heartbeat_at.is_(None),
            Job.driver_heartbeat_at < now - timedelta(seconds=stale_after),
        )
        return _take_over(connection, job_id, driver_id, now, [Job.id == job_id, free], must_exist=False)


def release_driver(db: Database, job_id: int, driver_id: str) -> bool:
    """Give up driving ``job_id`` (the driver is finishing), so the next resume needn't wait for staleness."""
    with db.write() as connection:
        return (
            connection.execute(
                update(Job)
                .where(Job.id == job_id, Job.driver_id == driver_id)
                .values(driver_id=None, driver_heartbeat_at=None)
            ).rowcount
            == 1
        )


def _take_over(
    connection: Connection,
    job_id: int,
    driver_id: str,
    now: datetime,
    conditions: list[Any],
    *,
    must_exist: bool = True,
) -> bool:
    previous = connection.execute(select(Job.driver_id).where(Job.id == job_id)).one_or_none()
    if previous is None:
        raise UnknownJob(f"job {job_id} is not in the database; `farm status` lists the jobs")
    changed = connection.execute(
        update(Job).where(*conditions).values(driver_id=driver_id, driver_heartbeat_at=now)
    ).rowcount
    if not changed:
        if must_exist:
            raise LostRace(f"job {job_id}: another process changed its driver while {driver_id} took over")
        return False
    if previous.driver_id != driver_id:
        message = f"{driver_id} drives the job" + (f" (was {previous.driver_id})" if previous.driver_id else "")
        event = _event(
            at=now,
            actor=driver_id,
            kind=EventKind.JOB_DRIVER,
            job_id=job_id,
            message=message,
            data={"driver_id": driver_id, "previous": previous.driver_id},
        )
        _write_events(connection, [event])
    return True


# --- shots and attempts ------------------------------------------------------------------------------------


def start_attempt(db: Database, shot_pk: int, *, worker: str, node: str, device: str, actor: str) -> int:
    """Claim a queued shot for a new attempt on ``worker``; returns the attempt's render id.

    Raises LostRace if the shot is not queued (another driver or worker claimed it first).
    """
    now = utcnow()
    with db.write() as connection:
        claimed = connection.execute(
            update(Shot)
            .where(Shot.id == shot_pk, Shot.state == ShotState.QUEUED)
            .values(state=ShotState.RUNNING, attempts=Shot.attempts + 1, updated_at=now)
            .returning(Shot.job_id, Shot.attempts)
        ).one_or_none()
        if claimed is None:
            raise _not_in_state(connection, shot_pk, ShotState.QUEUED, "claim it")
        render_id = connection.execute(
            insert(Render)
            .values(
                shot_id=shot_pk,
                attempt_no=claimed.attempts,
                worker=worker,
                node=node,
                device=device,
                state=AttemptState.RUNNING,
                started_at=now,
                progress=0.0,
                gpu_seconds=0.0,
            )
            .returning(Render.id)
        ).scalar_one()
        connection.execute(update(Shot).where(Shot.id == shot_pk).values(current_render_id=render_id))
        event = _event(
            at=now,
            actor=actor,
            kind=EventKind.SHOT_STARTED,
            job_id=claimed.job_id,
            shot_id=shot_pk,
            render_id=render_id,
            old=ShotState.QUEUED,
            new=ShotState.RUNNING,
            message=f"attempt {claimed.attempts} on {worker} ({node}, {device})",
            data={"attempt": claimed.attempts, "worker": worker, "node": node, "device": device},
        )
        _write_events(connection, [event])
    return render_id


def report_progress(db: Database, render_id: int, fraction: float, phase: str) -> bool:
    """Record an attempt's progress (0-1) while it runs; False if the attempt is no longer running.

    Progress is frequent and not a state change, so it writes no event.
    """
    with db.write() as connection:
        changed = connection.execute(
            update(Render)
            .where(Render.id == render_id, Render.state == AttemptState.RUNNING)
            .values(progress=min(max(float(fraction), 0.0), 1.0), phase=phase[:64], progress_at=utcnow())
        ).rowcount
    return changed == 1


def finish_attempt(
    db: Database,
    render_id: int,
    *,
    outcome: AttemptState,
    shot_state: ShotState,
    actor: str,
    artifact_id: int | None = None,
    error_class: str | None = None,
    error_message: str | None = None,
    gpu_seconds: float = 0.0,
    warnings: list[str] | None = None,
    artifacts: Sequence[ArtifactRecord] = (),
) -> bool:
    """End attempt ``render_id`` as ``outcome`` and move its shot from running to ``shot_state``.

    ``artifacts`` are recorded in the same transaction (as ``record_artifact`` would); when
    ``artifact_id`` is not given, the first of them becomes the shot's artifact.

    Fenced: only the shot's current attempt may finish it. A late finish from an attempt that lost its
    shot (recovered as crashed, handed to another worker) changes nothing and returns False; the caller
    should discard its result. Returns True when both rows changed (with one event each).
    Raises IllegalTransition for an outcome and shot state that do not belong together.
    """
    outcome, shot_state = AttemptState(outcome), ShotState(shot_state)
    check_attempt_outcome(outcome, shot_state, f"render {render_id}")
    now = utcnow()
    error_text = _error_text(error_class, error_message)
    shot_values: dict[str, Any] = {
        "state": shot_state,
        "gpu_seconds": Shot.gpu_seconds + float(gpu_seconds),
        "updated_at": now,
    }
    if shot_state is ShotState.DONE:
        started = select(Render.started_at).where(Render.id == render_id).scalar_subquery()
        shot_values.update(
            artifact_id=artifact_id,
            cached=False,
            last_error=None,
            render_seconds=seconds_between(started, literal(now, UTCDateTime())),
        )
    elif error_text:
        shot_values["last_error"] = error_text
    with db.write() as connection:
        artifact_ids = [_upsert_artifact(connection, record) for record in artifacts]
        if shot_state is ShotState.DONE and artifact_id is None and artifact_ids:
            artifact_id = shot_values["artifact_id"] = artifact_ids[0]
        shot = connection.execute(
            update(Shot)
            .where(Shot.current_render_id == render_id, Shot.state == ShotState.RUNNING)
            .values(**shot_values)
            .returning(Shot.id, Shot.job_id)
        ).one_or_none()
        if shot is None:
            return False
        render_values: dict[str, Any] = {
            "state": outcome,
            "finished_at": now,
            "error_class": error_class,
            "error_message": error_message,
            "gpu_seconds": float(gpu_seconds),
            "warnings": list(warnings) if warnings else None,
        }
        if outcome is AttemptState.SUCCEEDED:
            render_values["progress"] = 1.0
        finished = connection.execute(
            update(Render)
            .where(Render.id == render_id, Render.state == AttemptState.RUNNING)
            .values(**render_values)
            .returning(Render.attempt_no)
        ).one_or_none()
        if finished is None:
            # Unreachable while every writer goes through this module: a running shot's current attempt runs.
            raise LostRace(f"render {render_id} is current for shot {shot.id} but no longer running")
        common = {"at": now, "actor": actor, "job_id": shot.job_id, "shot_id": shot.id, "render_id": render_id}
        _write_events(
            connection,
            [
                _event(
                    **common,
                    kind=EventKind.RENDER_FINISHED,
                    old=AttemptState.RUNNING,
                    new=outcome,
                    message=error_text or f"attempt {finished.attempt_no} {outcome}",
                    data={"gpu_seconds": float(gpu_seconds), "warnings": list(warnings or [])},
                ),
                _event(
                    **common,
                    kind=EventKind.SHOT_FINISHED,
                    old=ShotState.RUNNING,
                    new=shot_state,
                    message=error_text or "",
                    data={"artifact_id": artifact_id} if artifact_id else None,
                ),
            ],
        )
    return True


def mark_cached(db: Database, shot_pk: int, artifact_id: int, *, actor: str) -> bool:
    """A queued shot whose cache key already has an artifact: done without rendering (``cached``).

    False if the shot was not queued (someone else already claimed or finished it).
    """
    with db.write() as connection:
        return _move_shot(
            connection,
            shot_pk,
            ShotState.QUEUED,
            ShotState.DONE,
            values={"cached": True, "artifact_id": artifact_id, "render_seconds": 0.0, "last_error": None},
            kind=EventKind.SHOT_CACHED,
            actor=actor,
            message="cache hit",
            data={"artifact_id": artifact_id},
        )


def _move_shot(
    connection: Connection,
    shot_pk: int,
    old: ShotState,
    new: ShotState,
    *,
    values: dict[str, Any],
    kind: EventKind,
    actor: str,
    message: str,
    data: dict[str, Any] | None = None,
) -> bool:
    """Compare-and-set a shot from ``old`` to ``new`` (with ``values``) and log it; False if it wasn't ``old``."""
    now = utcnow()
    job_id = connection.execute(
        update(Shot)
        .where(Shot.id == shot_pk, Shot.state == old)
        .values(state=new, updated_at=now, **values)
        .returning(Shot.job_id)
    ).scalar_one_or_none()
    if job_id is None:
        return False
    event = _event(
        at=now, actor=actor, kind=kind, job_id=job_id, shot_id=shot_pk, old=old, new=new, message=message, data=data
    )
    _write_events(connection, [event])
    return True


def transition_shot(
    db: Database,
    shot_pk: int,
    to: ShotState,
    *,
    actor: str,
    message: str = "",
    expected: set[ShotState] | None = None,
) -> ShotState:
    """Transitions that involve no attempt: cancel a queued shot, requeue a failed, cancelled or done one.

    Returns the state the shot left. Claiming, finishing and cache hits have their own functions
    (start_attempt, finish_attempt, mark_cached), because they must also write the attempt.
    """
    to = ShotState(to)
    now = utcnow()
    with db.write() as connection:
        current = connection.execute(select(Shot.state).where(Shot.id == shot_pk)).scalar_one_or_none()
        if current is None:
            raise UnknownShot(f"shot {shot_pk} is not in the database")
        if expected is not None and current not in expected:
            raise _not_in_state(connection, shot_pk, expected, f"move it to {to}")
        check_shot_transition(current, to, f"shot {shot_pk}")
        if current is ShotState.RUNNING or to in (ShotState.RUNNING, ShotState.DONE):
            raise IllegalTransition(
                f"shot {shot_pk}: {current} -> {to} involves an attempt; use start_attempt, finish_attempt, "
                "recover_orphans or mark_cached"
            )
        values: dict[str, Any] = {"state": to, "updated_at": now}
        if to is ShotState.QUEUED:
            values["cached"] = False
        job_id = connection.execute(
            update(Shot).where(Shot.id == shot_pk, Shot.state == current).values(**values).returning(Shot.job_id)
        ).scalar_one_or_none()
        if job_id is None:
            raise _not_in_state(connection, shot_pk, {current}, f"move it to {to}")
        kind = EventKind.SHOT_CANCELLED if to is ShotState.CANCELLED else EventKind.SHOT_REQUEUED
        event = _event(
            at=now, actor=actor, kind=kind, job_id=job_id, shot_id=shot_pk, old=current, new=to, message=message
        )
        _write_events(connection, [event])
    return current


def fail_unrenderable(db: Database, shot_pk: int, *, actor: str, reason: str) -> bool:
    """queued -> failed for a shot that can never render, with ``reason`` as its last error.

    False if the shot was no longer queued (a concurrent cancel or retry got there first).
    """
    with db.write() as connection:
        return _move_shot(
            connection,
            shot_pk,
            ShotState.QUEUED,
            ShotState.FAILED,
            values={"last_error": f"NotRendered: {reason}"},
            kind=EventKind.SHOT_FAILED,
            actor=actor,
            message=reason,
        )


def retake_shot(db: Database, shot_pk: int, *, spec: dict[str, Any], cache_key: str, actor: str, reason: str) -> bool:
    """done -> queued with a new recipe (a continuity retake: new seed, or a new shot to continue).

    The shot's spec and cache key change with it, so the render that follows is a new artifact and the
    old one stays in the store for the earlier edit versions. False if the shot was not done.
    """
    with db.write() as connection:
        return _move_shot(
            connection,
            shot_pk,
            ShotState.DONE,
            ShotState.QUEUED,
            values={"spec": spec, "cache_key": cache_key, "cached": False, "artifact_id": None},
            kind=EventKind.SHOT_REQUEUED,
            actor=actor,
            message=f"retake: {reason}",
            data={"cache_key": cache_key, "seed": spec.get("seed"), "continues": spec.get("continues")},
        )


def record_event(
    db: Database, job_id: int, *, kind: EventKind, actor: str, message: str, data: dict[str, Any] | None = None
) -> None:
    """An audit-log entry that changes no state (a node blocklisted for the job, say)."""
    with db.write() as connection:
        _write_events(
            connection, [_event(at=utcnow(), actor=actor, kind=kind, job_id=job_id, message=message, data=data)]
        )


def recover_orphans(db: Database, job_id: int, *, actor: str) -> int:
    """For a job whose driver died: crash every running attempt and requeue its shot. Returns the count."""
    now = utcnow()
    reason = f"the driver of job {job_id} stopped; attempt abandoned"
    with db.write() as connection:
        orphans = connection.execute(
            update(Shot)
            .where(Shot.job_id == job_id, Shot.state == ShotState.RUNNING)
            .values(state=ShotState.QUEUED, last_error=f"DriverLost: {reason}", updated_at=now)
            .returning(Shot.id, Shot.current_render_id)
        ).all()
        render_ids = [orphan.current_render_id for orphan in orphans if orphan.current_render_id is not None]
        if render_ids:
            connection.execute(
                update(Render)
                .where(Render.id.in_(render_ids), Render.state == AttemptState.RUNNING)
                .values(state=AttemptState.CRASHED, finished_at=now, error_class="DriverLost", error_message=reason)
            )
        events: list[dict[str, Any]] = []
        for orphan in orphans:
            common = {
                "at": now,
                "actor": actor,
                "job_id": job_id,
                "shot_id": orphan.id,
                "render_id": orphan.current_render_id,
                "message": reason,
            }
            events.append(
                _event(**common, kind=EventKind.RENDER_FINISHED, old=AttemptState.RUNNING, new=AttemptState.CRASHED)
            )
            events.append(_event(**common, kind=EventKind.SHOT_RECOVERED, old=ShotState.RUNNING, new=ShotState.QUEUED))
        _write_events(connection, events)
    return len(orphans)


def _not_in_state(
    connection: Connection, shot_pk: int, expected: ShotState | set[ShotState], purpose: str
) -> LostRace | UnknownShot:
    row = connection.execute(select(Shot.shot_id, Shot.job_id, Shot.state).where(Shot.id == shot_pk)).one_or_none()
    if row is None:
        return UnknownShot(f"shot {shot_pk} is not in the database")
    wanted = _names({expected} if isinstance(expected, ShotState) else expected)
    return LostRace(
        f"shot {row.shot_id} of job {row.job_id} is {row.state}, not {wanted}, so this process cannot {purpose}: "
        "another worker or driver changed it first"
    )


def _error_text(error_class: str | None, error_message: str | None) -> str | None:
    if error_class and error_message:
        return f"{error_class}: {error_message}"
    return error_class or error_message or None


def _names(states: Iterable[enum.StrEnum]) -> str:
    return " or ".join(sorted(str(state) for state in states))


# --- artifacts and edits -----------------------------------------------------------------------------------


def record_artifact(
    db: Database,
    *,
    cache_key: str,
    kind: str,
    path: str,
    bytes: int,
    sha256: str,
    frames: int | None,
    duration: float | None,
) -> int:
    """The artifact row for (cache_key, kind), created if missing; returns its id.

    Idempotent: two workers recording the same key at once keep one row (the first) and both get its id.
    """
    record = ArtifactRecord(cache_key, kind, path, bytes, sha256, frames, duration)
    with db.write() as connection:
        return _upsert_artifact(connection, record)


def _upsert_artifact(connection: Connection, record: ArtifactRecord) -> int:
    dialect_insert = postgresql.insert if connection.dialect.name == "postgresql" else sqlite.insert
    statement = (
        dialect_insert(Artifact)
        .values(**dataclasses.asdict(record), created_at=utcnow())
        .on_conflict_do_nothing(index_elements=[Artifact.cache_key, Artifact.kind])
        .returning(Artifact.id)
    )
    created = connection.execute(statement).scalar_one_or_none()
    if created is not None:
        return created
    return connection.execute(
        select(Artifact.id).where(Artifact.cache_key == record.cache_key, Artifact.kind == record.kind)
    ).scalar_one()


def record_edit(
    db: Database,
    job_id: int,
    *,
    video_path: str,
    otio_path: str | None,
    report_path: str | None,
    verdict: str,
    summary: dict[str, Any],
    actor: str = "farm",
    version: int | None = None,
) -> tuple[int, int]:
    """A new edit version of ``job_id`` (1, 2, ...; none is overwritten); returns (edit id, version).

    ``version``: the number the edit's folder already has (its creation is the lock on disk); by default
    the next free number.
    """
    for attempt in range(_CAS_RETRIES):
        try:
            with db.write() as connection:
                return _insert_edit(
                    connection, job_id, video_path, otio_path, report_path, verdict, summary, actor, version
                )
        except IntegrityError:
            # Two assemblies of the same job picked the same version at once (PostgreSQL); take the next one.
            if version is not None or attempt == _CAS_RETRIES - 1:
                raise
    raise AssertionError("unreachable")


def _insert_edit(
    connection: Connection,
    job_id: int,
    video_path: str,
    otio_path: str | None,
    report_path: str | None,
    verdict: str,
    summary: dict[str, Any],
    actor: str,
    version: int | None = None,
) -> tuple[int, int]:
    if connection.execute(select(Job.id).where(Job.id == job_id)).scalar_one_or_none() is None:
        raise UnknownJob(f"job {job_id} is not in the database; `farm status` lists the jobs")
    if version is None:
        version = connection.execute(
            select(func.coalesce(func.max(Edit.version), 0) + 1).where(Edit.job_id == job_id)
        ).scalar_one()
    now = utcnow()
    edit_id = connection.execute(
        insert(Edit)
        .values(
            job_id=job_id,
            version=version,
            video_path=video_path,
            otio_path=otio_path,
            report_path=report_path,
            verdict=verdict,
            summary=summary,
            created_at=now,
        )
        .returning(Edit.id)
    ).scalar_one()
    event = _event(
        at=now,
        actor=actor,
        kind=EventKind.EDIT_RECORDED,
        job_id=job_id,
        message=f"edit v{version}: continuity {verdict}",
        data={"edit_id": edit_id, "version": version, "verdict": verdict, "video": video_path},
    )
    _write_events(connection, [event])
    return edit_id, version
