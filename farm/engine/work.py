"""The plain data that crosses between the driver and a worker: what to render, and what came of it."""

from __future__ import annotations

from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any

from farm.plan import ShotTask
from farm.shotlist.types import CameraSpec


@dataclass(frozen=True)
class RenderAssignment:
    """One attempt at one shot. Media travels separately, through Ray's object store."""

    job_id: int
    shot_pk: int
    render_id: int
    attempt: int
    shot_id: str
    cache_key: str
    model: str
    prompt: str
    negative_prompt: str
    camera: CameraSpec
    fps: Fraction
    width: int
    height: int
    frames: int
    seed: int
    steps: int
    text_guidance: float
    audio_guidance: float
    params: dict[str, Any] = field(default_factory=dict)
    low_memory: bool = False

    @classmethod
    def for_task(
        cls,
        task: ShotTask,
        *,
        job_id: int,
        shot_pk: int,
        render_id: int,
        attempt: int,
        params: dict[str, Any],
        low_memory: bool,
    ) -> RenderAssignment:
        return cls(
            job_id=job_id,
            shot_pk=shot_pk,
            render_id=render_id,
            attempt=attempt,
            shot_id=task.shot_id,
            cache_key=task.cache_key,
            model=task.model,
            prompt=task.prompt,
            negative_prompt=task.negative_prompt,
            camera=task.camera,
            fps=task.fps,
            width=task.width,
            height=task.height,
            frames=task.frames,
            seed=task.seed,
            steps=task.steps,
            text_guidance=task.text_guidance,
            audio_guidance=task.audio_guidance,
            params=params,
            low_memory=low_memory,
        )


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
