"""``/api/shows``: every show's share, GPU quota, GPU-hour budget and GPU hours used; an admin changes them."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from farm.api.auth import Admin, Reader
from farm.api.context import FarmDep
from farm.api.schemas import ShowSettings

router = APIRouter(tags=["shows"])


@router.get("/api/shows", summary="Every show with its share, quota, budget and GPU hours used")
def list_shows(farm: FarmDep, caller: Reader) -> dict[str, Any]:
    return {"shows": [show.to_json() for show in farm.shows()]}


@router.put("/api/shows/{name}", summary="Change a show's share, GPU quota or GPU-hour budget (admin)")
def put_show(name: str, settings: ShowSettings, farm: FarmDep, caller: Admin) -> dict[str, Any]:
    """Fields left out stay as they are; ``null`` clears a quota or a budget. Logged as ``show.changed``."""
    changes = {field: getattr(settings, field) for field in settings.model_fields_set}
    return farm.set_show(name, **changes, by=caller.name).to_json()
