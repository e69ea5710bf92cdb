"""One database poller per followed job, however many clients follow it.

Every client of ``/events/stream`` used to poll the database itself, twice a second: fifty producers on one
job meant a hundred reads a second in the manager's own process, and the farm dispatched three times slower
(bench/dashboard.py). Now a job's ``JobTail`` polls once per interval for everyone and keeps the newest
events in memory; a client catches up from the database to where the tail begins, then reads the tail.

Each event is encoded to its SSE bytes once, when the tail reads it, and a follower is sent everything new
as one write: per-event generators through FastAPI's SSE machinery (two memory streams, a timer and a send
per event per client) were most of what fifty followers cost the manager's process.
"""

from __future__ import annotations

import asyncio
import bisect
from dataclasses import dataclass, field
from typing import Any

import orjson
from fastapi.concurrency import run_in_threadpool

from farm.jobs import FINISHED_JOB_STATES, Farm, JobState

PAGE = 500
KEPT = 10_000
"""Events a tail keeps; a client further behind reads the database instead."""


@dataclass
class JobTail:
    job_id: int
    first_id: int
    """The newest event id when the tail started: it holds only the events after it."""
    events: list = field(default_factory=list)
    messages: dict[int, bytes] = field(default_factory=dict)
    """Each kept event as its SSE message, encoded once for every follower."""
    state: JobState | None = None
    floor: int = 0
    """Events at or below this id are no longer kept (a client below it reads the database)."""
    followers: int = 0
    polled: bool = False
    caught_up: bool = False
    """The last poll read fewer than a page: nothing newer was in the database when it read the state."""
    task: asyncio.Task | None = None
    changed: asyncio.Event = field(default_factory=asyncio.Event)

    @property
    def last_id(self) -> int:
        return self.events[-1].id if self.events else self.first_id

    def after(self, seen: int) -> list:
        """The kept events after ``seen``: ids only grow, so a bisection, not a scan per follower per wake."""
        return self.events[bisect.bisect_right(self.events, seen, key=lambda event: event.id) :]

    @property
    def finished(self) -> bool:
        return self.polled and self.caught_up and self.state in FINISHED_JOB_STATES

    def messages_after(self, seen: int) -> tuple[int, bytes]:
        """The newest kept event id after ``seen`` and everything after ``seen`` as one SSE chunk."""
        events = self.after(seen)
        if not events:
            return seen, b""
        return events[-1].id, b"".join(self.messages[event.id] for event in events)

    async def wait(self, timeout: float) -> bool:
        """Until the tail reads something new or the job's state changes; False when ``timeout`` passed."""
        try:
            await asyncio.wait_for(self.changed.wait(), timeout)
        except TimeoutError:
            return False
        return True


def message_of(event: Any) -> bytes:
    """``id: <event id>``, ``event: <kind>``, ``data: <the event as JSON>`` (orjson writes no newline, so the
    data is one line)."""
    return b"id: %d\nevent: %s\ndata: %s\n\n" % (event.id, str(event.kind).encode(), orjson.dumps(event.to_json()))


def messages_of(events: Any) -> bytes:
    return b"".join(message_of(event) for event in events)


def end_message(job_id: int, state: JobState | None, last_event_id: int) -> bytes:
    """The stream's last message: ``event: end`` with the job's final state."""
    data = orjson.dumps({"job": job_id, "state": state, "last_event_id": last_event_id})
    return b"event: end\ndata: %s\n\n" % data


KEEP_ALIVE = b": keep-alive\n\n"
"""A comment line, sent when nothing happened for a while so proxies keep the connection open."""


class EventHub:
    """The app's tails, one per job someone follows; each polls while it has followers."""

    def __init__(self, farm: Farm, poll_seconds: float) -> None:
        self.farm = farm
        self.poll_seconds = poll_seconds
        self.tails: dict[int, JobTail] = {}

    async def join(self, job_id: int) -> JobTail:
        tail = self.tails.get(job_id)
        if tail is None:
            newest = await run_in_threadpool(self.farm.events, job_id, limit=1)
            tail = self.tails.get(job_id)  # another client may have made it meanwhile
            if tail is None:
                start = newest[-1].id if newest else 0
                tail = self.tails[job_id] = JobTail(job_id, first_id=start, floor=start)
                tail.task = asyncio.create_task(self._poll(tail))
        tail.followers += 1
        return tail

    def leave(self, tail: JobTail) -> None:
        tail.followers -= 1
        if tail.followers <= 0 and self.tails.get(tail.job_id) is tail:
            del self.tails[tail.job_id]
            if tail.task is not None:
                tail.task.cancel()

    async def _poll(self, tail: JobTail) -> None:
        while True:
            page = await run_in_threadpool(self.farm.events_since, tail.job_id, after=tail.last_id, limit=PAGE)
            tail.events.extend(page.events)
            tail.messages.update((event.id, message_of(event)) for event in page.events)
            if len(tail.events) > KEPT:
                dropped = tail.events[: len(tail.events) - KEPT]
                tail.floor = dropped[-1].id
                del tail.events[: len(dropped)]
                for event in dropped:
                    tail.messages.pop(event.id, None)
            news = bool(page.events) or page.job_state != tail.state or not tail.polled
            tail.state, tail.polled, tail.caught_up = page.job_state, True, len(page.events) < PAGE
            if news:  # followers wake only for something to send
                changed, tail.changed = tail.changed, asyncio.Event()
                changed.set()
            if len(page.events) < PAGE:
                await asyncio.sleep(self.poll_seconds)
