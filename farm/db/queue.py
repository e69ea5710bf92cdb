"""The farm's queue as the manager sees it: which jobs need a driver, their heads, the shows' limits.

Small reads the manager makes every half second (so they select only a few columns of unfinished
jobs), and the one write of its own: holding a job back, or letting it go, with the reason on the job
and an event.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import func, or_, select, update

from farm.db.columns import utcnow
from farm.db.events import event_row, write_events
from farm.db.kinds import EventKind
from farm.db.retry import transaction
from farm.db.session import Database
from farm.db.states import ACTIVE_JOB_STATES, JobState
from farm.db.tables import Job, Render, Shot, Show

DRIVABLE_JOB_STATES = frozenset({JobState.QUEUED, *ACTIVE_JOB_STATES})
"""A manager drives a job in these states (queued, or a phase a lost driver left it in)."""


@dataclass(frozen=True)
class JobHead:
    """What the manager ranks a job by, and whether it is still to be driven."""

    job_id: int
    state: JobState
    show: str
    priority: int
    hold_reason: str | None


@dataclass(frozen=True)
class ShowLimits:
    """A show's share of the farm, its GPU quota and GPU-hour budget (None: no limit)."""

    name: str
    share: float = 1.0
    gpu_quota: int | None = None
    gpu_hour_budget: float | None = None


@transaction
def jobs_needing_a_driver(db: Database, *, driver_id: str, stale_after: float) -> tuple[int, ...]:
    """Unfinished jobs that no live process drives (nor ``driver_id`` already), oldest first."""
    fresh = utcnow() - timedelta(seconds=stale_after)
    with db.read() as connection:
        rows = connection.execute(
            select(Job.c.id)
            .where(
                Job.c.state.in_(sorted(DRIVABLE_JOB_STATES)),
                or_(Job.c.driver_id.is_(None), Job.c.driver_heartbeat_at.is_(None), Job.c.driver_heartbeat_at < fresh),
            )
            .order_by(Job.c.id)
        ).scalars()
        return tuple(rows)


@transaction
def job_heads(db: Database, job_ids: Iterable[int]) -> dict[int, JobHead]:
    ids = sorted(set(job_ids))
    if not ids:
        return {}
    with db.read() as connection:
        rows = connection.execute(
            select(Job.c.id, Job.c.state, Job.c.project, Job.c.priority, Job.c.hold_reason).where(Job.c.id.in_(ids))
        ).all()
    return {row.id: JobHead(row.id, row.state, row.project, row.priority, row.hold_reason) for row in rows}


@transaction
def show_limits(db: Database) -> dict[str, ShowLimits]:
    with db.read() as connection:
        rows = connection.execute(select(Show.c.name, Show.c.share, Show.c.gpu_quota, Show.c.gpu_hour_budget)).all()
    return {row.name: ShowLimits(row.name, row.share, row.gpu_quota, row.gpu_hour_budget) for row in rows}


@transaction
def show_gpu_seconds(db: Database, shows: Iterable[str]) -> dict[str, float]:
    """GPU-seconds every attempt of each show's jobs has used (what its budget is spent on)."""
    names = sorted(set(shows))
    if not names:
        return {}
    with db.read() as connection:
        rows = connection.execute(
            select(Job.c.project, func.coalesce(func.sum(Render.c.gpu_seconds), 0.0))
            .select_from(Render)
            .join(Shot, Shot.c.id == Render.c.shot_id)
            .join(Job, Job.c.id == Shot.c.job_id)
            .where(Job.c.project.in_(names))
            .group_by(Job.c.project)
        ).all()
    used = {name: 0.0 for name in names}
    used.update({row[0]: float(row[1]) for row in rows})
    return used


@transaction
def hold_job(db: Database, job_id: int, reason: str | None, *, by: str) -> bool:
    """Hold a waiting job back with ``reason`` (None lets it go); True if that changed anything."""
    with db.write() as connection:
        changed = connection.execute(
            update(Job)
            .where(Job.c.id == job_id, Job.c.hold_reason.is_distinct_from(reason))
            .values(hold_reason=reason, updated_at=utcnow())
        ).rowcount
        if changed:
            message = f"held: {reason}" if reason else "released: rendering resumes"
            event = event_row(
                at=utcnow(), by=by, kind=EventKind.JOB_HELD, job_id=job_id, message=message, data={"reason": reason}
            )
            write_events(connection, [event])
    return bool(changed)
