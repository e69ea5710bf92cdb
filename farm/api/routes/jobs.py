"""``/api/jobs``: read jobs (summaries, one job by scene and shot, its attempts, logs and edits) and change
them (cancel, retry, reprioritise: an admin any job, an editor its own).

Each route is one ``Farm`` call; the bodies are the records' ``to_json`` shapes, as ``farm status --json``
prints them. Sync routes: FastAPI runs them in its thread pool, so a database read never stalls the
event loop that streams events.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, Query

from farm.api.auth import JobChanger, Reader, Reviewer, require_job_change
from farm.api.context import FarmDep
from farm.api.schemas import PriorityChange, RetryRequest, ReviewRequest
from farm.jobs import ShotState

router = APIRouter(tags=["jobs"])


@router.get("/api/jobs", summary="The most recent jobs, newest first")
def list_jobs(farm: FarmDep, caller: Reader, limit: Annotated[int, Query(ge=1, le=1000)] = 20) -> dict[str, Any]:
    return {"jobs": [job.to_json() for job in farm.jobs(limit=limit)]}


@router.get("/api/jobs/{job_id}", summary="One job: counts, scenes, failures, the latest edit, its shots")
def get_job(
    job_id: int,
    farm: FarmDep,
    caller: Reader,
    state: Annotated[list[ShotState] | None, Query(description="List only the shots in these states.")] = None,
    all_shots_up_to: Annotated[
        int, Query(ge=0, description="A job of at most this many shots is listed whole whatever `state` says.")
    ] = 0,
) -> dict[str, Any]:
    """``farm status JOB --json``'s shape, plus ``failed_shots``: the failed shots' rows, always."""
    detail = farm.status(job_id, shot_states=state or None, all_shots_up_to=all_shots_up_to)
    return {**detail.to_json(), "failed_shots": list(detail.failures)}


@router.get("/api/jobs/{job_id}/shots", summary="Every shot of a job, in edit order")
def get_shots(job_id: int, farm: FarmDep, caller: Reader) -> dict[str, Any]:
    return {"job": job_id, "shots": list(farm.status(job_id).shots)}


@router.get("/api/jobs/{job_id}/shots/{shot_id}/attempts", summary="Every render attempt of a shot")
def get_attempts(job_id: int, shot_id: str, farm: FarmDep, caller: Reader) -> dict[str, Any]:
    return {
        "job": job_id,
        "shot": shot_id,
        "attempts": [attempt.to_json() for attempt in farm.attempts(job_id, shot_id)],
    }


@router.get("/api/jobs/{job_id}/logs", summary="What the job's attempts printed (their captured logs)")
def get_logs(
    job_id: int,
    farm: FarmDep,
    caller: Reader,
    shot: Annotated[str | None, Query(description="Only this shot's attempts.")] = None,
    attempt: Annotated[int | None, Query(ge=1, description="Only this attempt (1 is the first).")] = None,
    latest: Annotated[bool, Query(description="Only the attempt that started last.")] = False,
    offset: Annotated[int | None, Query(ge=0, description="Read from this byte on (default: the log's end).")] = None,
) -> dict[str, Any]:
    """Each log's text, or in ``missing`` why there is none; ``next_offset`` is where to read what comes next."""
    logs = farm.logs(job_id, shot, attempt, latest=latest, offset=offset)
    return {"job": job_id, "logs": [log.to_json() for log in logs]}


@router.get("/api/jobs/{job_id}/edits", summary="The job's edit versions: files and continuity verdicts")
def get_edits(job_id: int, farm: FarmDep, caller: Reader) -> dict[str, Any]:
    versions = farm.edits(job_id)
    return {
        "job": job_id,
        "latest": versions[-1].to_json() if versions else None,
        "versions": [edit.to_json() for edit in versions],
    }


@router.get("/api/notifications", summary="Notifications sent (or being retried), newest first")
def list_notifications(
    farm: FarmDep,
    caller: Reader,
    job: Annotated[int | None, Query(ge=1)] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> dict[str, Any]:
    return {"notifications": [note.to_json() for note in farm.notifications(job, limit=limit)]}


@router.post("/api/jobs/{job_id}/cancel", summary="Cancel a job (queued shots at once, running ones shortly)")
def cancel_job(job_id: int, farm: FarmDep, caller: JobChanger) -> dict[str, Any]:
    require_job_change(farm, caller, job_id, "cancelling")
    return {"job": job_id, "cancelled_shots": farm.cancel(job_id, by=caller.name)}


@router.post("/api/jobs/{job_id}/retry", summary="Queue a job's failed and cancelled shots again (or those named)")
def retry_job(
    job_id: int, farm: FarmDep, caller: JobChanger, request: Annotated[RetryRequest | None, Body()] = None
) -> dict[str, Any]:
    require_job_change(farm, caller, job_id, "retrying")
    shots = request.shots if request is not None else None
    return {"job": job_id, "requeued_shots": farm.retry(job_id, shots=shots, by=caller.name)}


@router.post("/api/jobs/{job_id}/review", summary="Approve a job's newest edit, or send shots back for retakes")
def review_job(job_id: int, request: ReviewRequest, farm: FarmDep, caller: Reviewer) -> dict[str, Any]:
    edit = farm.review(
        job_id,
        request.review,
        comment=request.comment,
        shots=request.shots,
        version=request.version,
        by=caller.name,
    )
    status = farm.status(job_id, shot_states=()).job.producer_status
    return {"job": job_id, "edit": edit.to_json(), "producer_status": status.value}


@router.patch("/api/jobs/{job_id}", summary="Change a job's priority")
def patch_job(job_id: int, change: PriorityChange, farm: FarmDep, caller: JobChanger) -> dict[str, Any]:
    require_job_change(farm, caller, job_id, "reprioritising")
    previous = farm.set_priority(job_id, change.priority, by=caller.name)
    return {"job": job_id, "priority": change.priority, "previous_priority": previous}
