"""A job's audit log: ``/api/jobs/{id}/events`` as JSON, and ``/events/stream`` live, as Server-Sent Events.

The stream first replays what the client has not seen (the events after ``Last-Event-ID``, the header a
browser's EventSource sends when it reconnects, or after ``?after=``), then follows the job's tail: one
poller per job for every client (``farm.api.feeds``). Every SSE ``id`` is the event's id, so a
reconnecting client misses nothing and sees nothing twice. It ends, with an ``end`` event, once the job
is finished and every event has been sent; a keep-alive comment goes out when nothing happened for 15 s.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import StreamingResponse

from farm.api.auth import Reader
from farm.api.context import ApiSettingsDep, FarmDep
from farm.api.feeds import KEEP_ALIVE, PAGE, EventHub, end_message, messages_of
from farm.jobs import Farm

router = APIRouter(tags=["events"])

KEEP_ALIVE_SECONDS = 15.0


def existing_job(job_id: int, farm: FarmDep) -> int:
    """404 before a stream starts, rather than a stream that ends at once."""
    farm.submitted_job(job_id)
    return job_id


@router.get("/api/jobs/{job_id}/events", summary="A job's audit log, oldest first")
def get_events(
    job_id: int,
    farm: FarmDep,
    caller: Reader,
    after: Annotated[int | None, Query(ge=0, description="Only the events after this event id.")] = None,
    limit: Annotated[int | None, Query(ge=1, le=100_000, description="At most this many: the last ones, or the "
                                       "first ones after `after`.")] = None,
) -> dict[str, Any]:  # fmt: skip
    if after is None:
        events = farm.events(job_id, limit=limit)
        return {"job": job_id, "events": [event.to_json() for event in events]}
    page = farm.events_since(job_id, after=after, limit=limit or PAGE)
    return {"job": job_id, "state": page.job_state, "events": [event.to_json() for event in page.events]}


@router.get(
    "/api/jobs/{job_id}/events/stream",
    response_class=StreamingResponse,
    responses={200: {"content": {"text/event-stream": {}}, "description": "The job's events, then `end`."}},
    summary="A job's events, live (Server-Sent Events)",
)
async def stream_events(
    request: Request,
    farm: FarmDep,
    api: ApiSettingsDep,
    caller: Reader,
    job_id: Annotated[int, Depends(existing_job)],
    after: Annotated[int | None, Query(ge=0, description="Replay the events after this event id.")] = None,
    last_event_id: Annotated[str | None, Header(alias="Last-Event-ID")] = None,
) -> StreamingResponse:
    """Each event is ``event: <kind>``, ``id: <event id>``, ``data: <the event as JSON>``; the last is
    ``event: end`` with the job's final state."""
    hub = hub_of(request, farm, api.poll_seconds)
    stream = _follow(hub, farm, job_id, _resume_point(after, last_event_id))
    return StreamingResponse(
        stream, media_type="text/event-stream", headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
    )


async def _follow(hub: EventHub, farm: Farm, job_id: int, seen: int) -> AsyncIterator[bytes]:
    """The stream's body: whatever is new since the last write, as one chunk (the server stops it when the
    client goes away)."""
    tail = await hub.join(job_id)
    try:
        while True:
            if seen < tail.first_id or seen < tail.floor:  # behind the tail: catch up from the database
                page = await run_in_threadpool(farm.events_since, job_id, after=seen, limit=PAGE)
                if not page.events:  # nothing in the database between here and the tail's start
                    seen = max(seen, tail.first_id)
                    continue
                seen, chunk = page.events[-1].id, messages_of(page.events)
            else:
                seen, chunk = tail.messages_after(seen)
            if chunk:
                yield chunk
                continue
            if tail.finished:
                yield end_message(job_id, tail.state, seen)
                return
            if not await tail.wait(timeout=KEEP_ALIVE_SECONDS):
                yield KEEP_ALIVE
    finally:
        hub.leave(tail)


def hub_of(request: Request, farm: Farm, poll_seconds: float) -> EventHub:
    """The app's one EventHub (made on first use, inside the event loop it polls from)."""
    hub = getattr(request.app.state, "event_hub", None)
    if hub is None:
        hub = request.app.state.event_hub = EventHub(farm, poll_seconds)
    return hub


def _resume_point(after: int | None, last_event_id: str | None) -> int:
    """Where the client left off: ``?after=`` wins over ``Last-Event-ID``; a header that is no event id
    (another server's) is ignored and the stream starts from the first event."""
    if after is not None:
        return after
    if last_event_id and last_event_id.strip().isdigit():
        return int(last_event_id.strip())
    return 0
