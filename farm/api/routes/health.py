"""``GET /api/health``: whether the API answers at all (no token needed: load balancers and ``farm serve``'s
own start-up check call it)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from farm import __version__

router = APIRouter(tags=["health"])


@router.get("/api/health", summary="The API is up")
def health() -> dict[str, Any]:
    return {"ok": True, "service": "farm", "version": __version__}
