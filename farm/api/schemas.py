"""What the API's requests carry, as pydantic models: checked (and documented in /docs) before a route runs.

Responses are the library's records in their ``to_json`` shapes (the ones ``--json`` prints), so the API and
the CLI never disagree about what a job looks like.
"""

from __future__ import annotations

from pathlib import PurePath
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

QualityName = Literal["preview", "final"]
"""``farm.catalog.Quality``'s values (a test keeps them in step)."""


class _Request(BaseModel):
    model_config = ConfigDict(extra="forbid")


class SubmitByPath(_Request):
    """Submit the shot list at ``path`` on the studio's shared storage (the farm reads it and its media there)."""

    path: str = Field(description="Absolute path of the shot list, as the farm manager's machine sees it.")
    quality: QualityName | None = Field(None, description="Render every shot at this quality.")
    priority: int = Field(0, description="Higher runs first when jobs share the farm.")

    @field_validator("path")
    @classmethod
    def _absolute(cls, path: str) -> str:
        if not PurePath(path).is_absolute():
            raise ValueError(
                f"{path!r} is relative; give the shot list's absolute path on the studio's shared storage, "
                "or upload a bundle (multipart, `farm submit FILE --upload`)"
            )
        return path


class SubmitBundleFields(_Request):
    """The form fields that come with an uploaded bundle (the file itself is the ``bundle`` part)."""

    shot_list: str = Field(description="The shot list's path inside the bundle, e.g. ep07.yaml.")
    quality: QualityName | None = None
    priority: int = 0


class PriorityChange(_Request):
    priority: int = Field(description="The job's new priority; higher runs first.")


class RetryRequest(_Request):
    shots: list[str] | None = Field(
        None, description="Exactly these shots (done ones too: a retake); default: the failed and cancelled ones."
    )


class SignIn(_Request):
    token: str = Field(min_length=1, max_length=200, description="An API token (farm token create NAME).")


class ReviewRequest(_Request):
    """A producer's decision on a job's newest edit."""

    review: Literal["approved", "retake"] = Field(description="approved, or retake (send shots back).")
    comment: str = Field("", max_length=4000, description="What to change; required for a retake naming shots.")
    shots: list[str] = Field(default_factory=list, description="For a retake: the shots to render again.")
    version: int | None = Field(None, ge=1, description="The edit version reviewed (default: the newest).")


class ShowSettings(_Request):
    """A show's settings to change; a field left out stays as it is, null clears a quota or a budget."""

    share: float | None = Field(None, gt=0, description="Weight of the show's fair share of GPU time (1 = equal).")
    gpu_quota: int | None = Field(None, ge=0, description="Most GPUs the show's shots may hold at once.")
    gpu_hour_budget: float | None = Field(None, ge=0, description="GPU hours the show may spend in all.")
