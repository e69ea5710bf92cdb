"""A job's media for the dashboard: a shot's last frame, an edit version's files (its video, served with
byte ranges so a player can seek; its report and the report's thumbnails), and the edit's loudness."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from fastapi.responses import FileResponse

from farm.api.auth import Reader
from farm.api.context import FarmDep

router = APIRouter(tags=["media"])


@router.get("/api/jobs/{job_id}/shots/{shot_id}/thumbnail", summary="The last frame a shot rendered, as a JPEG")
def shot_thumbnail(job_id: int, shot_id: str, farm: FarmDep, caller: Reader) -> FileResponse:
    path = farm.shot_thumbnail(job_id, shot_id)
    return FileResponse(path, media_type="image/jpeg", headers={"cache-control": "private, max-age=86400"})


@router.get("/api/jobs/{job_id}/edits/{version}/files/{name:path}", summary="A file of an edit version")
def edit_file(job_id: int, version: int, name: str, farm: FarmDep, caller: Reader) -> FileResponse:
    return FileResponse(farm.edit_file(job_id, version, name))


@router.get("/api/jobs/{job_id}/edits/{version}/loudness", summary="The edit's loudness every half second")
def edit_loudness(job_id: int, version: int, farm: FarmDep, caller: Reader) -> dict[str, Any]:
    points = farm.edit_loudness(job_id, version)
    return {
        "job": job_id,
        "version": version,
        "points": [{"t": round(p.seconds, 2), "momentary": p.momentary, "short_term": p.short_term} for p in points],
    }
