"""The dashboard's pages: the jobs list, one job, and the sign-in. Pages are rendered on the server from the
same records the API sends (readable before any script runs); the scripts then keep them live.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from jinja2 import Environment, FileSystemLoader, select_autoescape

from farm import __version__
from farm.api.auth import SESSION_COOKIE
from farm.api.context import FarmDep
from farm.jobs import Farm, Identity, JobState, ProducerStatus, UnknownJob

HERE = Path(__file__).parent
STATIC = HERE / "static"
templates = Environment(loader=FileSystemLoader(HERE / "templates"), autoescape=select_autoescape(["html"]))

router = APIRouter(include_in_schema=False)

ORDER = {
    ProducerStatus.RETAKE: 0,
    ProducerStatus.RENDERING: 1,
    ProducerStatus.READY: 2,
    ProducerStatus.WAITING_FOR_APPROVAL: 3,
    ProducerStatus.TODO: 4,
    ProducerStatus.DONE: 5,
}
"""The jobs page's order: what needs a person first (failures and QC fails), then work under way."""
LABELS = {
    ProducerStatus.TODO: "todo",
    ProducerStatus.READY: "ready",
    ProducerStatus.RENDERING: "rendering",
    ProducerStatus.WAITING_FOR_APPROVAL: "waiting for approval",
    ProducerStatus.RETAKE: "retake",
    ProducerStatus.DONE: "approved",
}


def signed_in(request: Request, farm: Farm) -> Identity | None:
    token = request.cookies.get(SESSION_COOKIE)
    return farm.verify_token(token) if token else None


def page(name: str, **context: Any) -> HTMLResponse:
    html = templates.get_template(name).render(version=__version__, labels=LABELS, **context)
    return HTMLResponse(html, headers={"cache-control": "no-store"})


def to_login(request: Request) -> Response:
    return RedirectResponse(f"/login?next={request.url.path}", status_code=303)


@router.get("/login")
def login(request: Request, next: str = "/") -> HTMLResponse:
    return page("login.html", next=next if next.startswith("/") and not next.startswith("//") else "/")


@router.get("/")
def jobs_page(
    request: Request,
    farm: FarmDep,
    show: Annotated[str | None, Query()] = None,
    status: Annotated[str | None, Query()] = None,
) -> Response:
    identity = signed_in(request, farm)
    if identity is None:
        return to_login(request)
    jobs = farm.jobs(limit=200)
    shows = {info.name: info for info in farm.shows()}
    listed = [
        job for job in jobs if (not show or job.project == show) and (not status or job.producer_status.value == status)
    ]
    listed.sort(key=lambda job: (ORDER[job.producer_status], -job.id))
    return page(
        "jobs.html",
        identity=identity,
        jobs=listed,
        shows=shows,
        show=show or "",
        status=status or "",
        statuses=list(ProducerStatus),
        now=datetime.now(UTC),
        finished=(JobState.DONE, JobState.FAILED, JobState.CANCELLED),
    )


@router.get("/jobs/{job_id}")
def job_page(job_id: int, request: Request, farm: FarmDep) -> Response:
    identity = signed_in(request, farm)
    if identity is None:
        return to_login(request)
    try:
        detail = farm.status(job_id)
    except UnknownJob:
        response = page("missing.html", identity=identity, job_id=job_id)
        response.status_code = 404
        return response
    return page("job.html", identity=identity, detail=detail, job=detail.job, edits=farm.edits(job_id))
