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

from farm.catalog import ModelManifest
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
        """Render one shot into ``sink``; raise farm.errors.RenderError (or a subclass) on failure."""
