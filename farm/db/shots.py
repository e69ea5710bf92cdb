"""Shots and their render attempts: claim, progress, finish, cache hits, shots that cannot render, retakes.

Each function is one transaction. Shot moves go through ``farm.db.machine.move_shots`` (the transition
table, compare-and-set, the event, the job settled after it). Finishing an attempt is fenced by the shot's
``current_render_id``: a late "finished" from an attempt that lost its node cannot overwrite the shot
after it was handed to another worker.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, exists, insert, literal, select, update

from farm.db.claims import ClaimRequest, release_claim, take_claim
from farm.db.columns import UTCDateTime, seconds_between, utcnow
from farm.db.errors import UnknownShot
from farm.db.events import event_row, write_events, written_on_first_try
from farm.db.kinds import EventKind
from farm.db.machine import MovedShot, ShotMove, move_shots, names
from farm.db.products import ArtifactRecord, upsert_artifact
from farm.db.retry import rerun_since, transaction
from farm.db.session import Database
from farm.db.states import AttemptState, LostRace, ShotState, check_attempt_outcome
from farm.db.tables import Render, Shot


@dataclass(frozen=True)
class AttemptRun:
    """What an attempt runs and on what, recorded on its row for the cost model (``farm.db.costs``)."""

    model: str
    gpu_type: str
    width: int
    height: int
    frames: int
    steps: int
    levers: Mapping[str, Any]
    """The render parameters it runs with (precision, attention backend, caches, ...): how it was made."""


@dataclass(frozen=True)
class AttemptStart:
    """A new attempt: its render id (the fencing token), number, and where its log is to be written."""

    render_id: int
    attempt_no: int
    log_path: str | None


def start_attempt(db: Database, shot_pk: int, *, worker: str, node: str, device: str, by: str) -> int:
    """Claim a queued shot for a new attempt on ``worker``; returns the attempt's render id.

    Raises LostRace if the shot is not queued (another driver or worker claimed it first).
    """
    return start_logged_attempt(db, shot_pk, worker=worker, node=node, device=device, by=by).render_id


@transaction
def start_logged_attempt(
    db: Database,
    shot_pk: int,
    *,
    worker: str,
    node: str,
    device: str,
    by: str,
    log_dir: str | None = None,
    key_claim: ClaimRequest | None = None,
    run: AttemptRun | None = None,
) -> AttemptStart:
    """``start_attempt``, recording where the attempt's log goes (``log_dir/<shot>.attempt-<n>.log``).

    With ``key_claim``, the attempt claims its cache key in the same transaction (``farm.db.claims``): if another
    attempt renders that key now, KeyClaimed is raised and nothing of this attempt stays. ``run``: what it runs
    on (model, GPU type, size, frames, steps, levers), recorded for the cost model."""
    now = utcnow()
    with db.write() as connection:
        # FOR UPDATE: on PostgreSQL a second claimer waits here, then sees the shot running (SQLite's
        # BEGIN IMMEDIATE has serialised the two already).
        claim = connection.execute(
            select(Shot.c.attempts + 1, Shot.c.shot_id)
            .where(Shot.c.id == shot_pk, Shot.c.state == ShotState.QUEUED)
            .with_for_update()
        ).one_or_none()
        if claim is None:
            earlier = _started_earlier(connection, shot_pk, worker=worker, node=node)
            if earlier is not None:
                return AttemptStart(earlier.id, earlier.attempt_no, db.paths.to_absolute(earlier.log_path))
            raise not_in_state(connection, shot_pk, {ShotState.QUEUED}, "claim it")
        attempt_no = claim[0]
        log_path = f"{log_dir}/{claim[1]}.attempt-{attempt_no}.log" if log_dir else None
        render_id = connection.execute(
            insert(Render)
            .values(
                shot_id=shot_pk,
                attempt_no=attempt_no,
                worker=worker,
                node=node,
                device=device,
                state=AttemptState.RUNNING,
                started_at=now,
                progress=0.0,
                gpu_seconds=0.0,
                log_path=db.paths.to_stored(log_path),
                **_run_values(run),
            )
            .returning(Render.c.id)
        ).scalar_one()
        if key_claim is not None:
            take_claim(connection, key_claim, render_id=render_id, now=now)
        move = ShotMove(
            ShotState.QUEUED,
            ShotState.RUNNING,
            EventKind.SHOT_STARTED,
            message=f"attempt {attempt_no} on {worker} ({node}, {device})",
            data={"attempt": attempt_no, "worker": worker, "node": node, "device": device},
        )
        claimed = move_shots(
            connection,
            move,
            where=[Shot.c.id == shot_pk],
            by=by,
            values={"attempts": attempt_no, "current_render_id": render_id},
            of_attempt=True,
        )
        if not claimed:  # changed between the read and the update (PostgreSQL): nothing of this stays
            raise not_in_state(connection, shot_pk, {ShotState.QUEUED}, "claim it")
    return AttemptStart(render_id, attempt_no, log_path)


def _applied_levers(connection: Connection, render_id: int, applied: Mapping[str, Any] | None) -> dict[str, Any]:
    """The ``levers`` update that adds what the model applied to what the attempt was given (none: no update)."""
    kept = {key: value for key, value in (applied or {}).items() if isinstance(value, str | int | float | bool)}
    if not kept:
        return {}
    given = connection.execute(select(Render.c.levers).where(Render.c.id == render_id)).scalar_one_or_none()
    return {"levers": {**(given or {}), "applied": kept}}


def _run_values(run: AttemptRun | None) -> dict[str, Any]:
    if run is None:
        return {}
    levers = {key: value for key, value in run.levers.items() if isinstance(value, str | int | float | bool)}
    return {
        "model": run.model, "gpu_type": run.gpu_type, "width": run.width, "height": run.height,
        "frames": run.frames, "steps": run.steps, "levers": levers or None,
    }  # fmt: skip


@transaction
def report_progress(db: Database, render_id: int, fraction: float, phase: str) -> bool:
    """Record an attempt's progress (0-1) while it runs; False if the attempt is no longer running.

    Progress is frequent and not a state change, so it writes no event.
    """
    with db.write() as connection:
        changed = connection.execute(
            update(Render)
            .where(Render.c.id == render_id, Render.c.state == AttemptState.RUNNING)
            .values(progress=min(max(float(fraction), 0.0), 1.0), phase=phase[:64], progress_at=utcnow())
        ).rowcount
    return changed == 1


@transaction
def finish_attempt(
    db: Database,
    render_id: int,
    *,
    outcome: AttemptState,
    shot_state: ShotState,
    by: str,
    error_class: str | None = None,
    error_message: str | None = None,
    gpu_seconds: float = 0.0,
    warnings: Sequence[str] = (),
    timings: Mapping[str, float] | None = None,
    artifacts: Sequence[ArtifactRecord] = (),
    model_seconds: float | None = None,
    load_seconds: float | None = None,
    applied_levers: Mapping[str, Any] | None = None,
) -> bool:
    """End attempt ``render_id`` as ``outcome`` and move its shot from running to ``shot_state``.

    ``artifacts`` are recorded in the same transaction; the first becomes a done shot's artifact.
    ``timings``: seconds per stage, as the worker measured them; ``model_seconds`` the worker's busy time in
    the model's call and ``load_seconds`` its model load time (what the cost model learns from).
    ``applied_levers``: how the model says it made the frames (the precision ``auto`` became, whether the LoRA
    was fused, the guidance passes it ran), kept under ``levers.applied`` beside the parameters it was given.

    Fenced: only the shot's current attempt may finish it. A late finish from an attempt that lost its
    shot (recovered as crashed, handed to another worker) changes nothing and returns False; the caller
    should discard its result. Returns True when both rows changed (with one event each).
    Raises IllegalTransition for an outcome and shot state that do not belong together.
    """
    outcome, shot_state = AttemptState(outcome), ShotState(shot_state)
    check_attempt_outcome(outcome, shot_state, f"render {render_id}")
    now = utcnow()
    error_text = _error_text(error_class, error_message)
    current = (Shot.c.current_render_id == render_id) & (Shot.c.state == ShotState.RUNNING)
    with db.write() as connection:
        artifact_ids = [upsert_artifact(connection, record, paths=db.paths) for record in artifacts]
        levers = _applied_levers(connection, render_id, applied_levers)
        finished = connection.execute(
            update(Render)
            .where(Render.c.id == render_id, Render.c.state == AttemptState.RUNNING, exists().where(current))
            .values(
                state=outcome,
                finished_at=now,
                error_class=error_class,
                error_message=error_message,
                gpu_seconds=float(gpu_seconds),
                warnings=list(warnings) or None,
                timings=dict(timings) if timings else None,
                model_seconds=model_seconds,
                load_seconds=load_seconds,
                **levers,
                **({"progress": 1.0} if outcome is AttemptState.SUCCEEDED else {}),
            )
            .returning(Render.c.attempt_no, Render.c.shot_id)
        ).one_or_none()
        if finished is None:
            ended = written_on_first_try(connection, by=by, kind=EventKind.RENDER_FINISHED, render_id=render_id)
            return ended is not None and ended.new_state == outcome.value  # True: the first try finished it
        release_claim(connection, render_id)
        shot_values: dict[str, Any] = {"gpu_seconds": Shot.c.gpu_seconds + float(gpu_seconds)}
        if shot_state is ShotState.DONE:
            started = select(Render.c.started_at).where(Render.c.id == render_id).scalar_subquery()
            shot_values.update(
                artifact_id=artifact_ids[0] if artifact_ids else None,
                cached=False,
                last_error=None,
                render_seconds=seconds_between(started, literal(now, UTCDateTime())),
            )
        elif error_text:
            shot_values["last_error"] = error_text
        job_id = _job_of_shot(connection, finished.shot_id)
        ended = _attempt_ended(
            now, by, job_id, finished.shot_id, render_id, outcome,
            error_text or f"attempt {finished.attempt_no} {outcome}",
            {"gpu_seconds": float(gpu_seconds), "warnings": list(warnings)},
        )  # fmt: skip
        write_events(connection, [ended])
        move = ShotMove(
            ShotState.RUNNING,
            shot_state,
            EventKind.SHOT_FINISHED,
            message=error_text or "",
            data={"artifact_id": shot_values["artifact_id"]} if shot_values.get("artifact_id") else None,
        )
        moved = move_shots(connection, move, where=[current], by=by, values=shot_values, of_attempt=True)
        if not moved:  # the shot changed between the two statements (PostgreSQL): undo the attempt's end too
            raise LostRace(f"render {render_id} lost its shot while finishing; nothing was recorded")
    return True


@transaction
def mark_cached(db: Database, shot_pk: int, artifact_id: int, *, by: str) -> bool:
    """A queued shot whose cache key already has an artifact: done without rendering (``cached``).

    False if the shot was not queued (someone else already claimed or finished it).
    """
    move = ShotMove(ShotState.QUEUED, ShotState.DONE, EventKind.SHOT_CACHED, "cache hit", {"artifact_id": artifact_id})
    values = {"cached": True, "artifact_id": artifact_id, "render_seconds": 0.0, "last_error": None}
    with db.write() as connection:
        return bool(move_shots(connection, move, where=[Shot.c.id == shot_pk], by=by, values=values)) or (
            _moved_earlier(connection, shot_pk, EventKind.SHOT_CACHED, by=by)
        )


@transaction
def fail_unrenderable(db: Database, shot_pk: int, *, by: str, reason: str) -> bool:
    """queued -> failed for a shot that can never render, with ``reason`` as its last error.

    False if the shot was no longer queued (a concurrent cancel or retry got there first).
    """
    move = ShotMove(ShotState.QUEUED, ShotState.FAILED, EventKind.SHOT_FAILED, reason)
    with db.write() as connection:
        values = {"last_error": f"NotRendered: {reason}"}
        return bool(move_shots(connection, move, where=[Shot.c.id == shot_pk], by=by, values=values)) or (
            _moved_earlier(connection, shot_pk, EventKind.SHOT_FAILED, by=by)
        )


@transaction
def retake_shot(db: Database, shot_pk: int, *, spec: dict[str, Any], cache_key: str, by: str, reason: str) -> bool:
    """done -> queued with a new recipe (a continuity retake: new seed, a new shot to continue, the
    reference instead of the continued frames, an escalation rung), and ``reason``, why.

    The shot's spec and cache key change with it, so the render that follows is a new artifact and the
    old one stays in the store for the earlier edit versions. The reason is kept on the shot
    (``retake_reason``, in ``farm status``) and in the event. False if the shot was not done.
    """
    with db.write() as connection:
        return retake_shot_in(connection, shot_pk, spec=spec, cache_key=cache_key, by=by, reason=reason)


def retake_shot_in(
    connection: Connection, shot_pk: int, *, spec: dict[str, Any], cache_key: str, by: str, reason: str
) -> bool:
    """``retake_shot`` inside the caller's transaction (a producer's review re-queues its shots with it)."""
    move = ShotMove(
        ShotState.DONE,
        ShotState.QUEUED,
        EventKind.SHOT_REQUEUED,
        f"retake: {reason}",
        {
            "cache_key": cache_key,
            "seed": spec.get("seed"),
            "continues": spec.get("continues"),
            "from_reference": spec.get("from_reference", False),
            "escalation": spec.get("escalation", 0),
            "reason": reason,
        },
    )
    values = {"spec": spec, "cache_key": cache_key, "cached": False, "artifact_id": None, "retake_reason": reason}
    return bool(move_shots(connection, move, where=[Shot.c.id == shot_pk], by=by, values=values))


@transaction
def recover_orphans(db: Database, job_id: int, *, by: str) -> int:
    """For a job whose driver died: crash every running attempt and requeue its shot. Returns the count."""
    now = utcnow()
    reason = f"the driver of job {job_id} stopped; attempt abandoned"
    with db.write() as connection:
        running = connection.execute(
            select(Shot.c.current_render_id).where(Shot.c.job_id == job_id, Shot.c.state == ShotState.RUNNING)
        ).scalars()
        render_ids = [render_id for render_id in running if render_id is not None]
        crashed = connection.execute(
            update(Render)
            .where(Render.c.id.in_(render_ids), Render.c.state == AttemptState.RUNNING)
            .values(state=AttemptState.CRASHED, finished_at=now, error_class="DriverLost", error_message=reason)
            .returning(Render.c.id, Render.c.shot_id)
        ).all()
        write_events(
            connection,
            [_attempt_ended(now, by, job_id, row.shot_id, row.id, AttemptState.CRASHED, reason) for row in crashed],
        )
        move = ShotMove(ShotState.RUNNING, ShotState.QUEUED, EventKind.SHOT_RECOVERED, reason)
        recovered = move_shots(
            connection,
            move,
            where=[Shot.c.job_id == job_id],
            by=by,
            values={"last_error": f"DriverLost: {reason}"},
            of_attempt=True,
        )
    return len(recovered)


def requeue_shots(
    connection: Connection, job_id: int, sources: Sequence[ShotState], *, by: str, shot_ids: Sequence[str] | None
) -> list[MovedShot]:
    """Queue a job's shots in ``sources`` again (all of them, or those named): a retry, or a retake by hand."""
    where = [Shot.c.job_id == job_id]
    if shot_ids is not None:
        where.append(Shot.c.shot_id.in_(list(shot_ids)))
    moved: list[MovedShot] = []
    for source in sources:
        message = "retake" if source is ShotState.DONE else "retry"
        move = ShotMove(source, ShotState.QUEUED, EventKind.SHOT_REQUEUED, message)
        moved += move_shots(connection, move, where=where, by=by, values={"cached": False})
    return moved


def cancel_queued_shots(connection: Connection, job_id: int, *, by: str) -> list[MovedShot]:
    move = ShotMove(ShotState.QUEUED, ShotState.CANCELLED, EventKind.SHOT_CANCELLED, "job cancelled")
    return move_shots(connection, move, where=[Shot.c.job_id == job_id], by=by)


def not_in_state(
    connection: Connection, shot_pk: int, expected: set[ShotState], purpose: str
) -> LostRace | UnknownShot:
    row = connection.execute(
        select(Shot.c.shot_id, Shot.c.job_id, Shot.c.state).where(Shot.c.id == shot_pk)
    ).one_or_none()
    if row is None:
        return UnknownShot(f"shot {shot_pk} is not in the database")
    return LostRace(
        f"shot {row.shot_id} of job {row.job_id} is {row.state}, not {names(expected)}, so this process cannot "
        f"{purpose}: another worker or driver changed it first"
    )


def _attempt_ended(
    at: datetime,
    by: str,
    job_id: int,
    shot_pk: int,
    render_id: int,
    outcome: AttemptState,
    message: str,
    data: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The event of an attempt that ended (render.finished), running -> ``outcome``."""
    return event_row(
        at=at, by=by, kind=EventKind.RENDER_FINISHED, job_id=job_id, shot_pk=shot_pk, render_id=render_id,
        old=AttemptState.RUNNING, new=outcome, message=message, data=data,
    )  # fmt: skip


def _started_earlier(connection: Connection, shot_pk: int, *, worker: str, node: str) -> Any:
    """On a retry (``rerun_since``), this call's own attempt if its first try committed before the
    connection died: the shot running an attempt this worker started since the call began. None otherwise."""
    since = rerun_since()
    if since is None:
        return None
    return connection.execute(
        select(Render.c.id, Render.c.attempt_no, Render.c.log_path)
        .join(Shot, Shot.c.current_render_id == Render.c.id)
        .where(
            Shot.c.id == shot_pk,
            Shot.c.state == ShotState.RUNNING,
            Render.c.state == AttemptState.RUNNING,
            Render.c.worker == worker,
            Render.c.node == node,
            Render.c.started_at >= since,
        )
    ).one_or_none()


def _moved_earlier(connection: Connection, shot_pk: int, kind: EventKind, *, by: str) -> bool:
    """On a retry, whether the first try made this shot move (its event is there, written by ``by``)."""
    return written_on_first_try(connection, by=by, kind=kind, shot_pk=shot_pk) is not None


def _job_of_shot(connection: Connection, shot_pk: int) -> int:
    return connection.execute(select(Shot.c.job_id).where(Shot.c.id == shot_pk)).scalar_one()


def _error_text(error_class: str | None, error_message: str | None) -> str | None:
    if error_class and error_message:
        return f"{error_class}: {error_message}"
    return error_class or error_message or None
