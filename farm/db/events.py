"""The audit log: one events row per change, written in the transaction that makes the change.

Writers build rows with ``event_row`` and insert them with ``write_events`` inside their own transaction,
so the log never disagrees with the tables. ``record_event`` is for entries that change no state.
``events_since`` is the follower's read: the events after the last one it saw, for a live stream.
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Row, insert, select

from farm.db.columns import utcnow
from farm.db.kinds import EventKind
from farm.db.retry import rerun_since, transaction
from farm.db.session import Database
from farm.db.tables import Event


def event_row(
    *,
    at: datetime,
    by: str,
    kind: EventKind,
    job_id: int | None,
    shot_pk: int | None = None,
    render_id: int | None = None,
    old: enum.StrEnum | None = None,
    new: enum.StrEnum | None = None,
    message: str = "",
    data: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """One row for the events table (every row has every key, so a list of them inserts in one batch).

    ``by`` is who made the change: a person's login, or a process such as ``driver@host``.
    """
    return {
        "at": at,
        "changed_by": by,
        "kind": kind,
        "job_id": job_id,
        "shot_id": shot_pk,
        "render_id": render_id,
        "old_state": old.value if old is not None else None,
        "new_state": new.value if new is not None else None,
        "message": message,
        "data": data,
    }


def write_events(connection: Connection, events: Sequence[dict[str, Any]]) -> None:
    if events:
        connection.execute(insert(Event), list(events))


def written_on_first_try(
    connection: Connection,
    *,
    by: str,
    kind: EventKind,
    job_id: int | None = None,
    shot_pk: int | None = None,
    render_id: int | None = None,
    message: str | None = None,
) -> Row[Any] | None:
    """On a retried transaction (``farm.db.retry.rerun_since``), the newest event ``by`` wrote of ``kind``
    (for that job, shot or attempt) since the call began; None on a first try or if there is none.

    A retry asks this to learn whether its first try committed before its connection died: the event is
    written in the same transaction as the change it records, so finding it means the change is made.
    """
    since = rerun_since()
    if since is None:
        return None
    statement = select(Event).where(Event.c.at >= since, Event.c.changed_by == by, Event.c.kind == kind)
    for column, value in ((Event.c.job_id, job_id), (Event.c.shot_id, shot_pk), (Event.c.render_id, render_id)):
        if value is not None:
            statement = statement.where(column == value)
    if message is not None:
        statement = statement.where(Event.c.message == message)
    return connection.execute(statement.order_by(Event.c.id.desc()).limit(1)).one_or_none()


@transaction
def record_event(
    db: Database, job_id: int, *, kind: EventKind, by: str, message: str, data: dict[str, Any] | None = None
) -> None:
    """An audit-log entry that changes no state (a node blocklisted for the job, a driver pausing, say)."""
    with db.write() as connection:
        if written_on_first_try(connection, by=by, kind=kind, job_id=job_id, message=message) is not None:
            return  # the first try committed before its connection died
        write_events(connection, [event_row(at=utcnow(), by=by, kind=kind, job_id=job_id, message=message, data=data)])
