"""The contract between the render engine and every avatar model.

A worker creates one model per slot, calls ``load`` once, then ``render`` for many shots. Frames are
written to a sink as they are produced rather than returned, so a three-minute monologue never has to sit
in memory as one array; the result carries only what the next shot needs (its last frames) and timings.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any, ClassVar, Protocol, runtime_checkable

import numpy as np

from farm import defaults
from farm.catalog import ModelManifest
from farm.errors import RenderError
from farm.shotlist.types import CameraSpec

ProgressCallback = Callable[[float, str], None]
"""Called with the fraction done (0..1) and a short phase name ("denoise", "decode", ...)."""


def no_progress(fraction: float, phase: str) -> None:
    """A progress callback that ignores its calls."""


@dataclass(frozen=True)
class Continuation:
    """What a shot that ``continues`` another receives from it."""

    last_frames: np.ndarray
    """(k, H, W, 3) uint8: the previous shot's final frames, oldest first; the last is the colour reference."""


@dataclass(frozen=True)
class RenderRequest:
    shot_id: str
    reference_image: np.ndarray
    """(H, W, 3) uint8 RGB portrait, at its own size; the model fits it to ``width`` x ``height``."""
    audio: np.ndarray
    """float32 mono in [-1, 1] at ``sample_rate``; exactly ``frames / fps`` seconds long (to a sample)."""
    sample_rate: int
    """Always farm.defaults.MODEL_SAMPLE_RATE: planning cuts and hashes the dialogue at that rate."""
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
    continuation: Continuation | None = None
    params: Mapping[str, Any] = field(default_factory=dict)
    """The manifest's render parameters (with its low-memory overlay after an out-of-memory retry)."""


def check_request(request: RenderRequest, manifest: ModelManifest) -> None:
    """Refuse, naming the shot, a request that ``manifest``'s model cannot render as asked.

    Every adapter calls this first in ``render``, so a wrong size or sample rate fails as a RenderError
    (not retried) that says what to change, instead of as a shape error deep in a model, or as a
    silently wrong lip sync. The size multiple is the manifest's: the shot-list validator checks the
    same number, so a shot that passed validation never fails here.
    """
    multiple = manifest.size_multiple
    for dimension, size in (("width", request.width), ("height", request.height)):
        if size <= 0 or size % multiple:
            raise RenderError(
                f"shot {request.shot_id}: {dimension} {size} is not a positive multiple of {multiple} "
                f"(model {manifest.name}); choose an output size divisible by {multiple}"
            )
    if request.sample_rate != defaults.MODEL_SAMPLE_RATE:
        raise RenderError(
            f"shot {request.shot_id}: audio is {request.sample_rate} Hz; model {manifest.name} needs "
            f"{defaults.MODEL_SAMPLE_RATE} Hz mono (farm.media.audio decodes dialogue at that rate)"
        )
    if request.frames < 1:
        raise RenderError(f"shot {request.shot_id}: nothing to render ({request.frames} frames)")


@dataclass(frozen=True)
class RenderResult:
    frames_written: int
    last_frames: np.ndarray
    """(k, H, W, 3) uint8 for a shot that continues this one."""
    timings: Mapping[str, float] = field(default_factory=dict)
    warnings: tuple[str, ...] = ()


class FrameSink(Protocol):
    """Where a model writes frames: (n, H, W, 3) uint8 RGB chunks, in order, ``frames`` in all."""

    def write(self, frames: np.ndarray) -> None: ...


@runtime_checkable
class AvatarModel(Protocol):
    """A talking-avatar model: portrait + speech (+ prompt, camera) -> frames."""

    code_version: ClassVar[str]
    """Bumped whenever a change alters the pixels a model produces for the same inputs (cache keys use it)."""

    def __init__(self, manifest: ModelManifest) -> None: ...

    def load(self, device: str) -> None:
        """Load weights onto ``device`` ("cpu", "cuda", "cuda:1"); called once per worker."""

    def render(self, request: RenderRequest, sink: FrameSink, progress: ProgressCallback) -> RenderResult:
        """Render one shot into ``sink``; raise farm.errors.RenderError (or a subclass) on failure.

        Exactly ``request.frames`` frames, in order; progress fractions that never go down and end at 1;
        the same frames for the same request and seed; ``check_request`` before any work.
        tests/test_avatar_contract.py holds every adapter to this.
        """
