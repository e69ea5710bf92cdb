"""The state machine that decides: every move of a job or a shot, checked against ``farm.db.states``.

``move_job`` and ``move_shots`` are the only code that changes a job's or a shot's state (an attempt's
ends with its shot's move, in ``farm.db.shots``). Each consults the
transition table, then writes a conditional UPDATE (compare-and-set: ``... WHERE state = :old``), so if
another writer got there first nothing changes and the caller hears so. Each writes its event rows in
the same transaction. ``move_shots`` then settles the job (Flamenco's "update job after task change"):
a rendering job whose last shot finished moves to ``assembling`` (or ``failed``), and a finished job
that has shots queued again moves back to ``queued``. No other package decides a job's state from its
shots.

SQLite serialises these transactions (BEGIN IMMEDIATE + busy timeout); on PostgreSQL a concurrent UPDATE
of the same row waits and then re-checks the WHERE clause, so exactly one of two racing writers wins.
All functions here take an open write ``Connection``: they are the steps other ``farm.db`` modules
compose into one transaction.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, Connection, exists, func, select, update

from farm.db.columns import utcnow
from farm.db.errors import UnknownJob
from farm.db.events import event_row, write_events
from farm.db.kinds import EventKind
from farm.db.states import (
    FINISHED_JOB_STATES,
    UNFINISHED_SHOT_STATES,
    JobState,
    LostRace,
    ShotState,
    check_job_transition,
    check_shot_transition,
)
from farm.db.tables import Job, Shot

_WAITS_FOR_REQUEUED_SHOTS = FINISHED_JOB_STATES | {JobState.ASSEMBLING, JobState.CHECKING}
"""Job states that go back to queued when one of their shots is queued again."""

CAS_RETRIES = 5
"""How often a read-then-compare-and-set on a job re-reads after losing to a concurrent writer."""


def move_job(
    connection: Connection,
    job_id: int,
    to: JobState,
    *,
    by: str,
    message: str = "",
    expected: Iterable[JobState] | None = None,
) -> JobState:
    """Move a job to ``to``; returns the state it left.

    ``expected``: the states the caller believes the job is in (LostRace if it is not). Raises
    IllegalTransition if the table forbids the move, UnknownJob if there is no such job. Sets
    ``started_at`` on the first start of rendering and ``finished_at`` when the job finishes.
    """
    wanted = frozenset(expected) if expected is not None else None
    now = utcnow()
    values: dict[str, Any] = {"state": to, "updated_at": now}
    if to is JobState.RENDERING:
        values["started_at"] = func.coalesce(Job.c.started_at, now)
    values["finished_at"] = now if to in FINISHED_JOB_STATES else None
    for _ in range(CAS_RETRIES):
        current = job_state_in(connection, job_id)
        if wanted is not None and current not in wanted:
            raise LostRace(f"job {job_id} is {current}, not {names(wanted)}: someone else changed it first")
        check_job_transition(current, to, f"job {job_id}")
        changed = connection.execute(
            update(Job).where(Job.c.id == job_id, Job.c.state == current).values(**values)
        ).rowcount
        if changed == 1:
            event = event_row(
                at=now, by=by, kind=EventKind.JOB_STATE, job_id=job_id, old=current, new=to, message=message
            )
            write_events(connection, [event])
            return current
    raise LostRace(f"job {job_id} kept changing while {by} tried to move it to {to}; try again")


def job_state_in(connection: Connection, job_id: int) -> JobState:
    state = connection.execute(select(Job.c.state).where(Job.c.id == job_id)).scalar_one_or_none()
    if state is None:
        raise UnknownJob(f"job {job_id} is not in the database; `farm status` lists the jobs")
    return state


@dataclass(frozen=True)
class ShotMove:
    """One kind of shot move: from ``old`` to ``new``, and what the event says about it."""

    old: ShotState
    new: ShotState
    kind: EventKind
    message: str = ""
    data: dict[str, Any] | None = None


@dataclass(frozen=True)
class MovedShot:
    pk: int
    job_id: int
    current_render_id: int | None


def move_shots(
    connection: Connection,
    move: ShotMove,
    *,
    where: Sequence[ColumnElement[bool]],
    by: str,
    values: dict[str, Any] | None = None,
    of_attempt: bool = False,
) -> list[MovedShot]:
    """Move every shot matching ``where`` that is in ``move.old`` to ``move.new``; returns the shots moved.

    Checked against the shot transition table first. One event per shot moved (``of_attempt``: the move
    concerns the shot's current attempt, which the event names); then each affected job is settled.
    Shots that were not in ``move.old`` are left alone: the caller decides whether that means a lost race.
    """
    check_shot_transition(move.old, move.new, "a shot")
    now = utcnow()
    moved = [
        MovedShot(row.id, row.job_id, row.current_render_id)
        for row in connection.execute(
            update(Shot)
            .where(*where, Shot.c.state == move.old)
            .values(state=move.new, updated_at=now, **(values or {}))
            .returning(Shot.c.id, Shot.c.job_id, Shot.c.current_render_id)
        )
    ]
    write_events(
        connection,
        [
            event_row(
                at=now,
                by=by,
                kind=move.kind,
                job_id=shot.job_id,
                shot_pk=shot.pk,
                render_id=shot.current_render_id if of_attempt else None,
                old=move.old,
                new=move.new,
                message=move.message,
                data=move.data,
            )
            for shot in moved
        ],
    )
    for job_id in sorted({shot.job_id for shot in moved}):
        settle_job(connection, job_id, by=by)
    return moved


def settle_job(connection: Connection, job_id: int, *, by: str) -> JobState:
    """The job's state as its shots now imply; returns the state it is in afterwards.

    A rendering job with no shot queued or running has rendered what it can: ``assembling`` when every shot
    is done, ``failed`` when some failed (or were cancelled without the job being cancelled). A finished
    job with a shot queued again (a retry, a retake by hand) is ``queued``, and so is one that was making
    its edit (a shot's video went missing and is rendered again). In every other state the job's phase is
    its driver's to change, and nothing happens here.
    """
    for _ in range(CAS_RETRIES):
        state = job_state_in(connection, job_id)
        target = _implied_state(connection, job_id, state)
        if target is None:
            return state
        to, message = target
        try:
            move_job(connection, job_id, to, by=by, message=message, expected={state})
        except LostRace:  # another writer settled (or moved) it between the read and the update: read again
            continue
        return to
    raise LostRace(f"job {job_id} kept changing while {by} settled it; try again")


def _implied_state(connection: Connection, job_id: int, state: JobState) -> tuple[JobState, str] | None:
    """Where the job's shots say a job in ``state`` should be, and why; None when it stays."""
    if state is JobState.RENDERING:
        if _any_shot(connection, job_id, UNFINISHED_SHOT_STATES):
            return None
        unfinished = _count_shots(connection, job_id, (ShotState.FAILED, ShotState.CANCELLED))
        if unfinished:
            return JobState.FAILED, f"{unfinished} shot(s) failed"
        return JobState.ASSEMBLING, "every shot is rendered"
    if state in _WAITS_FOR_REQUEUED_SHOTS and _any_shot(connection, job_id, (ShotState.QUEUED,)):
        return JobState.QUEUED, "shots queued again"
    return None


def _any_shot(connection: Connection, job_id: int, states: Iterable[ShotState]) -> bool:
    query = select(exists().where(Shot.c.job_id == job_id, Shot.c.state.in_(sorted(states))))
    return bool(connection.execute(query).scalar())


def _count_shots(connection: Connection, job_id: int, states: Iterable[ShotState]) -> int:
    query = select(func.count()).select_from(Shot).where(Shot.c.job_id == job_id, Shot.c.state.in_(sorted(states)))
    return int(connection.execute(query).scalar_one())


def names(states: Iterable[enum.StrEnum]) -> str:
    return " or ".join(sorted(str(state) for state in states))
