"""What every route is handed: the Farm the app serves, and the app's own settings (``create_app``)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Annotated

from fastapi import Depends, Request

from farm.jobs import Farm
from farm.jobs.bundle import BundleLimits


@dataclass(frozen=True)
class ApiSettings:
    """How the API behaves beyond the farm's settings."""

    poll_seconds: float = 0.5
    """How often an event stream looks for new events."""
    bundle_limits: BundleLimits = field(default_factory=BundleLimits)


def farm_of(request: Request) -> Farm:
    farm: Farm = request.app.state.farm
    return farm


def api_settings_of(request: Request) -> ApiSettings:
    settings: ApiSettings = request.app.state.api_settings
    return settings


FarmDep = Annotated[Farm, Depends(farm_of)]
ApiSettingsDep = Annotated[ApiSettings, Depends(api_settings_of)]
