"""The driver lease: which process drives a job, proven alive by a heartbeat.

A driver claims the lease before it touches a job's shots and renews it every few seconds; a driver that
dies stops renewing, and once its heartbeat is older than the staleness limit another driver may take
the job over (recovering the dead driver's attempts). Claims are compare-and-set, so two drivers resuming
the same job at once cannot both win. A change of driver is logged as an event.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, insert, or_, select, update

from farm.db.columns import utcnow
from farm.db.errors import UnknownJob
from farm.db.events import event_row, write_events
from farm.db.kinds import EventKind
from farm.db.retry import transaction
from farm.db.session import Database
from farm.db.states import LostRace
from farm.db.tables import Job, ManagerLease


@transaction
def heartbeat(db: Database, job_id: int, driver_id: str) -> None:
    """Record that ``driver_id`` is alive and driving ``job_id`` (a change of driver is logged as an event)."""
    now = utcnow()
    with db.write() as connection:
        same_driver = connection.execute(
            update(Job).where(Job.c.id == job_id, Job.c.driver_id == driver_id).values(driver_heartbeat_at=now)
        ).rowcount
        if same_driver:
            return
        _take_over(connection, job_id, driver_id, now, [Job.c.id == job_id])


@transaction
def claim_driver(db: Database, job_id: int, driver_id: str, *, stale_after: float) -> bool:
    """Become the driver of ``job_id`` unless another driver's heartbeat is younger than ``stale_after`` s."""
    now = utcnow()
    with db.write() as connection:
        free = or_(
            Job.c.driver_id.is_(None),
            Job.c.driver_id == driver_id,
            Job.c.driver_heartbeat_at.is_(None),
            Job.c.driver_heartbeat_at < now - timedelta(seconds=stale_after),
        )
        return _take_over(connection, job_id, driver_id, now, [Job.c.id == job_id, free], must_exist=False)


@transaction
def release_driver(db: Database, job_id: int, driver_id: str) -> bool:
    """Give up driving ``job_id`` (the driver is finishing), so the next resume needn't wait for staleness."""
    with db.write() as connection:
        released = connection.execute(
            update(Job)
            .where(Job.c.id == job_id, Job.c.driver_id == driver_id)
            .values(driver_id=None, driver_heartbeat_at=None)
        ).rowcount
    return released == 1


def _take_over(
    connection: Connection,
    job_id: int,
    driver_id: str,
    now: datetime,
    conditions: list[Any],
    *,
    must_exist: bool = True,
) -> bool:
    previous = connection.execute(select(Job.c.driver_id).where(Job.c.id == job_id)).one_or_none()
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
        event = event_row(
            at=now,
            by=driver_id,
            kind=EventKind.JOB_DRIVER,
            job_id=job_id,
            message=message,
            data={"driver_id": driver_id, "previous": previous.driver_id},
        )
        write_events(connection, [event])
    return True


# ---- the manager's lease ---------------------------------------------------------------------------------

MANAGER_ROLE = "manager"


@dataclass(frozen=True)
class ManagerInfo:
    """Who manages the farm now, since when, its last heartbeat and where its API listens."""

    holder: str
    heartbeat_at: datetime
    since: datetime
    api_url: str | None

    def alive(self, stale_after: float, now: datetime | None = None) -> bool:
        return (now or utcnow()) - self.heartbeat_at < timedelta(seconds=stale_after)


@transaction
def claim_manager(db: Database, holder: str, *, stale_after: float, api_url: str | None = None) -> bool:
    """Become the farm's manager unless another one's heartbeat is younger than ``stale_after`` s.

    Compare-and-set on the one row, so of two ``farm serve`` started together exactly one wins; the other
    is a standby that calls this again until the first one's heartbeat goes stale.
    """
    now = utcnow()
    with db.write() as connection:
        row = connection.execute(
            select(ManagerLease.c.holder, ManagerLease.c.heartbeat_at).where(ManagerLease.c.role == MANAGER_ROLE)
        ).one_or_none()
        if row is None:
            connection.execute(insert(ManagerLease).values(role=MANAGER_ROLE))
        free = or_(
            ManagerLease.c.holder.is_(None),
            ManagerLease.c.holder == holder,
            ManagerLease.c.heartbeat_at.is_(None),
            ManagerLease.c.heartbeat_at < now - timedelta(seconds=stale_after),
        )
        won = connection.execute(
            update(ManagerLease)
            .where(ManagerLease.c.role == MANAGER_ROLE, free)
            .values(holder=holder, heartbeat_at=now, since=now, api_url=api_url)
        ).rowcount
        if won and (row is None or row.holder != holder):
            previous = row.holder if row is not None else None
            message = f"{holder} manages the farm" + (f" (was {previous})" if previous else "")
            data = {"holder": holder, "previous": previous, "api_url": api_url}
            write_events(
                connection,
                [event_row(at=now, by=holder, kind=EventKind.MANAGER_LEASE, job_id=None, message=message, data=data)],
            )
    return bool(won)


@transaction
def renew_manager(db: Database, holder: str) -> bool:
    """Renew the manager's heartbeat; False when another manager has taken the farm over (stop at once)."""
    with db.write() as connection:
        renewed = connection.execute(
            update(ManagerLease)
            .where(ManagerLease.c.role == MANAGER_ROLE, ManagerLease.c.holder == holder)
            .values(heartbeat_at=utcnow())
        ).rowcount
    return renewed == 1


@transaction
def release_manager(db: Database, holder: str) -> None:
    """Give the farm up (a clean stop), so a standby takes over without waiting for staleness."""
    with db.write() as connection:
        connection.execute(
            update(ManagerLease)
            .where(ManagerLease.c.role == MANAGER_ROLE, ManagerLease.c.holder == holder)
            .values(holder=None, heartbeat_at=None)
        )


@transaction
def current_manager(db: Database) -> ManagerInfo | None:
    """The manager of record (alive or not; ``ManagerInfo.alive`` tells), None if none ever ran."""
    with db.read() as connection:
        row = connection.execute(
            select(
                ManagerLease.c.holder, ManagerLease.c.heartbeat_at, ManagerLease.c.since, ManagerLease.c.api_url
            ).where(ManagerLease.c.role == MANAGER_ROLE)
        ).one_or_none()
    if row is None or row.holder is None or row.heartbeat_at is None:
        return None
    return ManagerInfo(row.holder, row.heartbeat_at, row.since or row.heartbeat_at, row.api_url)


@transaction
def heartbeat_jobs(db: Database, driver_id: str) -> int:
    """Renew the lease of every job ``driver_id`` drives, in one statement (the manager drives many)."""
    with db.write() as connection:
        return connection.execute(
            update(Job).where(Job.c.driver_id == driver_id).values(driver_heartbeat_at=utcnow())
        ).rowcount
