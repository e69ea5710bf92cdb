"""The plain data that crosses between the driver and a worker: what to render, and what came of it."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from farm.plan import ShotTask


@dataclass(frozen=True)
class RenderAssignment:
    """One attempt at one shot: the planned task plus what this attempt adds. Media travels separately,
    through Ray's object store."""

    job_id: int
    shot_pk: int
    render_id: int
    attempt: int
    task: ShotTask
    params: dict[str, Any] = field(default_factory=dict)
    """The manifest's render parameters, with its low-memory overlay after an out-of-memory error."""
    low_memory: bool = False


@dataclass(frozen=True)
class RenderOutcome:
    """A finished attempt: where the artifacts are and what the render cost."""

    render_id: int
    shot_pk: int
    cache_key: str
    video_path: str
    video_bytes: int
    video_sha256: str
    last_frames_path: str
    last_frames_bytes: int
    last_frames_sha256: str
    frames: int
    duration: float
    worker: str
    node: str
    device: str
    model_seconds: float
    """Time spent inside the model's render call (the busy time of the slot)."""
    timings: dict[str, float] = field(default_factory=dict)
    warnings: tuple[str, ...] = ()


@dataclass(frozen=True)
class WorkerIdentity:
    name: str
    node_id: str
    node_ip: str
    device: str
