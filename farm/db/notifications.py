"""Notifications in the database: the events worth telling someone about, the messages made of them, and
every delivery attempt.

The notifier reads the event log after its cursor (``notifiable_events``), records one notification per
event and target and advances the cursor in the same transaction (``record_notifications``), then sends
what is due (``due_notifications``) and records each attempt (``record_attempt``). A crash between any two
steps loses nothing and sends nothing twice to a receiver that answered.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, func, insert, or_, select, update

from farm.db.columns import utcnow
from farm.db.kinds import Channel, DeliveryState, EventKind
from farm.db.records import _JsonRecord
from farm.db.retry import transaction
from farm.db.session import Database
from farm.db.states import JobState, LostRace
from farm.db.tables import Edit, Event, Job, Notification, NotifierCursor, Render, Shot
from farm.verdicts import Verdict

CURSOR = "notifier"


@dataclass(frozen=True)
class NotifiableEvent:
    """An event that may become notifications, with what a message about it needs."""

    event_id: int
    at: datetime
    kind: EventKind
    job_id: int
    show: str
    episode: str
    submitted_by: str
    new_state: str | None
    message: str
    data: dict[str, Any] | None
    shot_id: str | None
    error_class: str | None
    edit_version: int | None
    edit_verdict: Verdict | None
    edit_video: str | None
    edit_report: str | None


@dataclass(frozen=True)
class NewNotification:
    event_id: int
    job_id: int | None
    topic: str
    channel: Channel
    target: str
    payload: dict[str, Any]


@dataclass(frozen=True)
class NotificationRecord(_JsonRecord):
    id: int
    event_id: int
    job_id: int | None
    topic: str
    channel: Channel
    target: str
    payload: dict[str, Any]
    state: DeliveryState
    attempts: int
    next_attempt_at: datetime
    last_status: str | None
    last_response: str | None
    created_at: datetime
    delivered_at: datetime | None


_FIELDS = tuple(NotificationRecord.__dataclass_fields__)
_EVENT_COLUMNS = (
    Event.c.id,
    Event.c.at,
    Event.c.kind,
    Event.c.job_id,
    Job.c.project,
    Job.c.episode,
    Job.c.submitted_by,
    Event.c.new_state,
    Event.c.message,
    Event.c.data,
    Shot.c.shot_id,
    Render.c.error_class,
    Edit.c.version,
    Edit.c.verdict,
    Edit.c.video_path,
    Edit.c.report_path,
)
"""In NotifiableEvent's field order."""


@transaction
def notifiable_events(
    db: Database, *, settle_seconds: float = 2.0, limit: int = 500
) -> tuple[int, int, tuple[NotifiableEvent, ...]]:
    """(cursor, read up to, events): the events after the cursor that may need telling (a job done or
    failed, a job held for a spent budget, an attempt killed as stuck), oldest first, at most ``limit``.

    Only events older than ``settle_seconds`` are read: ids are handed out at insert and transactions commit
    in their own order, so a newer id can be visible before an older one; a short wait lets every
    transaction that took an id below the read's end commit first.
    """
    newest = select(Edit.c.job_id, func.max(Edit.c.version).label("version")).group_by(Edit.c.job_id).subquery()
    wanted = or_(
        and_(Event.c.kind == EventKind.JOB_STATE, Event.c.new_state.in_([JobState.DONE.value, JobState.FAILED.value])),
        and_(Event.c.kind == EventKind.JOB_HELD, Event.c.message.like("held: %")),
        and_(Event.c.kind == EventKind.RENDER_FINISHED, Render.c.error_class == "Stuck"),
    )
    with db.read() as connection:
        cursor = _cursor(connection)
        settled = utcnow() - timedelta(seconds=settle_seconds)
        end = connection.execute(select(func.max(Event.c.id)).where(Event.c.at <= settled)).scalar_one() or 0
        end = max(end, cursor)
        rows = connection.execute(
            select(*_EVENT_COLUMNS)
            .join(Job, Job.c.id == Event.c.job_id)
            .outerjoin(Shot, Shot.c.id == Event.c.shot_id)
            .outerjoin(Render, Render.c.id == Event.c.render_id)
            .outerjoin(newest, newest.c.job_id == Event.c.job_id)
            .outerjoin(Edit, (Edit.c.job_id == Event.c.job_id) & (Edit.c.version == newest.c.version))
            .where(Event.c.id > cursor, Event.c.id <= end, wanted)
            .order_by(Event.c.id)
            .limit(limit)
        ).all()
    events = tuple(NotifiableEvent(*row[:-2], *map(db.paths.to_absolute, row[-2:])) for row in rows)
    # A full page was read up to its last event; otherwise everything up to ``end`` was.
    return cursor, (events[-1].event_id if len(events) == limit else end), events


@transaction
def record_notifications(db: Database, *, read_from: int, read_to: int, items: Sequence[NewNotification]) -> int:
    """Insert ``items`` and move the cursor from ``read_from`` to ``read_to``, in one transaction; LostRace if
    another notifier moved it first (nothing is inserted then). Returns how many were recorded."""
    with db.write() as connection:
        if connection.execute(select(NotifierCursor.c.name).where(NotifierCursor.c.name == CURSOR)).first() is None:
            connection.execute(insert(NotifierCursor).values(name=CURSOR, last_event_id=0))
        moved = connection.execute(
            update(NotifierCursor)
            .where(NotifierCursor.c.name == CURSOR, NotifierCursor.c.last_event_id == read_from)
            .values(last_event_id=read_to)
        ).rowcount
        if not moved:
            raise LostRace("another notifier read the event log first")
        now = utcnow()
        if items:
            connection.execute(
                insert(Notification),
                [
                    {
                        "event_id": item.event_id,
                        "job_id": item.job_id,
                        "topic": item.topic,
                        "channel": item.channel,
                        "target": item.target,
                        "payload": item.payload,
                        "state": DeliveryState.PENDING,
                        "attempts": 0,
                        "next_attempt_at": now,
                        "created_at": now,
                    }
                    for item in items
                ],
            )
    return len(items)


@transaction
def due_notifications(db: Database, *, now: datetime | None = None, limit: int = 50) -> tuple[NotificationRecord, ...]:
    """Pending notifications whose next attempt is due, oldest first."""
    moment = now or utcnow()
    with db.read() as connection:
        rows = connection.execute(
            select(*(Notification.c[name] for name in _FIELDS))
            .where(Notification.c.state == DeliveryState.PENDING, Notification.c.next_attempt_at <= moment)
            .order_by(Notification.c.next_attempt_at, Notification.c.id)
            .limit(limit)
        ).all()
    return tuple(NotificationRecord(*row) for row in rows)


@transaction
def record_attempt(
    db: Database, notification_id: int, *, delivered: bool, status: str, response: str, retry_at: datetime | None
) -> None:
    """One delivery attempt's outcome: delivered; or failed, retried at ``retry_at`` (None: given up)."""
    now = utcnow()
    if delivered:
        values: dict[str, Any] = {"state": DeliveryState.DELIVERED, "delivered_at": now}
    elif retry_at is None:
        values = {"state": DeliveryState.FAILED}
    else:
        values = {"next_attempt_at": retry_at}
    with db.write() as connection:
        connection.execute(
            update(Notification)
            .where(Notification.c.id == notification_id, Notification.c.state == DeliveryState.PENDING)
            .values(
                attempts=Notification.c.attempts + 1, last_status=status[:200], last_response=response[:2000], **values
            )
        )


@transaction
def notifications_of(db: Database, *, job_id: int | None = None, limit: int = 100) -> tuple[NotificationRecord, ...]:
    """The newest notifications (of one job, or of all), newest first."""
    query = select(*(Notification.c[name] for name in _FIELDS)).order_by(Notification.c.id.desc()).limit(limit)
    if job_id is not None:
        query = query.where(Notification.c.job_id == job_id)
    with db.read() as connection:
        rows = connection.execute(query).all()
    return tuple(NotificationRecord(*row) for row in rows)


def _cursor(connection: Any) -> int:
    value = connection.execute(
        select(NotifierCursor.c.last_event_id).where(NotifierCursor.c.name == CURSOR)
    ).scalar_one_or_none()
    return int(value or 0)
