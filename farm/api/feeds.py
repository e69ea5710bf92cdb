"""One database poller per followed job, however many clients follow it.

Every client of ``/events/stream`` used to poll the database itself, twice a second: fifty producers on one
job meant a hundred reads a second in the manager's own process, and the farm dispatched three times slower
(bench/dashboard.py). Now a job's ``JobTail`` polls once per interval for everyone and keeps the newest
events in memory; a client catches up from the database to where the tail begins, then reads the tail.
"""

from __future__ import annotations

import asyncio
import bisect
import contextlib
from dataclasses import dataclass, field
from typing import Any

import orjson
from fastapi.concurrency import run_in_threadpool
from fastapi.sse import ServerSentEvent

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
    messages: dict[int, ServerSentEvent] = field(default_factory=dict)
    """Each kept event as its SSE message, encoded once for every follower."""
    state: JobState | None = None
    floor: int = 0
    """Events at or below this id are no longer kept (a client below it reads the database)."""
    followers: int = 0
    polled: bool = False
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
        return self.polled and self.state in FINISHED_JOB_STATES

    async def wait(self, timeout: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.changed.wait(), timeout)


def message_of(event: Any) -> ServerSentEvent:
    """``event: <kind>``, ``id: <event id>``, ``data: <the event as JSON>``."""
    return ServerSentEvent(raw_data=orjson.dumps(event.to_json()).decode(), id=str(event.id), event=str(event.kind))


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
            tail.state, tail.polled = page.job_state, True
            changed, tail.changed = tail.changed, asyncio.Event()
            changed.set()
            if len(page.events) < PAGE:
                await asyncio.sleep(self.poll_seconds)
