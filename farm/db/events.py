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

from sqlalchemy import Connection, insert

from farm.db.columns import utcnow
from farm.db.kinds import EventKind
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


def record_event(
    db: Database, job_id: int, *, kind: EventKind, by: str, message: str, data: dict[str, Any] | None = None
) -> None:
    """An audit-log entry that changes no state (a node blocklisted for the job, a driver pausing, say)."""
    with db.write() as connection:
        write_events(connection, [event_row(at=utcnow(), by=by, kind=kind, job_id=job_id, message=message, data=data)])
