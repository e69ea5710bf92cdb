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
from farm.errors import ManifestError, RenderError
from farm.media.framing import Framing, crop_image
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
class Speaker:
    """One person in a two-shot: their portrait, their own speech, and where their face goes in frame."""

    character_id: str
    reference_image: np.ndarray
    """(H, W, 3) uint8 RGB portrait of this speaker alone, at its own size."""
    audio: np.ndarray
    """float32 mono at the request's sample rate, as long as the request's ``audio``; drives only this face."""
    region: tuple[float, float, float, float]
    """(left, top, right, bottom) fractions of the frame holding this speaker's face; speakers' regions
    never overlap (validation refuses it)."""


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
    framing: Framing | None = None
    """How to frame ``reference_image`` (its crop, and the face camera moves anchor on), planned from the
    face; None: the adapter's own centre crop. Adapters apply it with ``farm.media.framing.crop_image``."""
    params: Mapping[str, Any] = field(default_factory=dict)
    """The manifest's render parameters (with its low-memory overlay after an out-of-memory retry)."""
    speakers: tuple[Speaker, ...] = ()
    """A two-shot's people, first speaker first; empty for a single-character shot. When set,
    ``reference_image`` is the first speaker's portrait and ``audio`` the mix of every speaker's audio
    (what the shot's file carries), so a model that renders one face still renders something sensible;
    ``layout`` says how they are composed."""
    layout: str = ""
    """A two-shot's layout (farm.shotlist.types.TwoShotLayout value); empty for one speaker."""

    take_offset: int = 0
    """Frames of the take before this request's first: a segment of a long take (farm.engine.takes)
    starts here, so camera moves and blinks run on across its seams. 0 for a shot rendered in one piece."""
    take_frames: int = 0
    """Frames of the whole take this request is a segment of; 0 means the request is the whole take."""

    @property
    def take_length(self) -> int:
        """Frames of the whole take (the request's own when it is not a segment)."""
        return max(self.take_frames, self.take_offset + self.frames)


def framed_reference(request: RenderRequest) -> np.ndarray:
    """The reference portrait cut to the request's framing, Lanczos-upscaled to at least the output size.

    Without a framing the portrait comes back as is (the adapter centre-crops it, as before framing).
    """
    if request.framing is None:
        return request.reference_image
    return crop_image(request.reference_image, request.framing.crop, (request.width, request.height))


def face_anchor(request: RenderRequest) -> tuple[float, float, float, float] | None:
    """The head in fractions of the framed portrait, for anchoring camera moves; None without a face."""
    return request.framing.head_fractions() if request.framing else None


RENDER_INPUTS = frozenset(
    {
        "reference_image",
        "audio",
        "prompt",
        "negative_prompt",
        "camera",
        "fps",
        "width",
        "height",
        "frames",
        "seed",
        "steps",
        "text_guidance",
        "audio_guidance",
        "continuation",
        "framing",
        "speakers",
    }
)
"""The RenderRequest fields an adapter may name in ``pixel_inputs``. ``params`` is not among them: the
manifest's render parameters are part of every model's identity, hence of every cache key."""


def pixel_inputs_of(adapter: type) -> frozenset[str]:
    """The request inputs that change ``adapter``'s pixels: its ``pixel_inputs``, checked.

    An adapter written before adapters declared them gets every input, the safe answer (a cache key
    with an input too many only costs a render; one with an input too few reuses wrong pixels). A name
    that is not a RenderRequest input is refused, so a typo cannot drop an input from the key.
    """
    declared = getattr(adapter, "pixel_inputs", None)
    if declared is None:
        return RENDER_INPUTS
    unknown = sorted(set(declared) - RENDER_INPUTS)
    if unknown:
        raise ManifestError(
            f"adapter {adapter.__module__}.{adapter.__qualname__}: pixel_inputs names {', '.join(unknown)}, "
            f"which {'is not a request input' if len(unknown) == 1 else 'are not request inputs'}; "
            f"use names from {', '.join(sorted(RENDER_INPUTS))}"
        )
    return frozenset(declared)


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
    for speaker in request.speakers:
        if len(speaker.audio) != len(request.audio):
            raise RenderError(
                f"shot {request.shot_id}: speaker {speaker.character_id}'s audio has {len(speaker.audio)} samples, "
                f"the shot's {len(request.audio)}; cut every speaker's dialogue to the shot's length"
            )


@dataclass(frozen=True)
class RenderResult:
    frames_written: int
    last_frames: np.ndarray
    """(k, H, W, 3) uint8 for a shot that continues this one."""
    timings: Mapping[str, float] = field(default_factory=dict)
    warnings: tuple[str, ...] = ()
    levers: Mapping[str, str | int | float | bool] = field(default_factory=dict)
    """How the frames were actually made (precision, attention kernel, compile, step cache, LoRA fused,
    steps, guidance passes), as the model applied them: the attempt row records it beside what was asked."""


class FrameSink(Protocol):
    """Where a model writes frames: (n, H, W, 3) uint8 RGB chunks, in order, ``frames`` in all."""

    def write(self, frames: np.ndarray) -> None: ...


@runtime_checkable
class AvatarModel(Protocol):
    """A talking-avatar model: portrait + speech (+ prompt, camera) -> frames."""

    code_version: ClassVar[str]
    """Bumped whenever a change alters the pixels a model produces for the same inputs (cache keys use it)."""

    pixel_inputs: ClassVar[frozenset[str]]
    """The RenderRequest inputs (names from RENDER_INPUTS) that change the frames; a shot's cache key is
    built from exactly these, so an input left out must never change a pixel (the contract test changes
    each one left out and expects identical frames)."""

    def __init__(self, manifest: ModelManifest) -> None: ...

    def load(self, device: str) -> None:
        """Load weights onto ``device`` ("cpu", "cuda", "cuda:1"); called once per worker."""

    def render(self, request: RenderRequest, sink: FrameSink, progress: ProgressCallback) -> RenderResult:
        """Render one shot into ``sink``; raise farm.errors.RenderError (or a subclass) on failure.

        Exactly ``request.frames`` frames, in order; progress fractions that never go down and end at 1;
        the same frames for the same request and seed; ``check_request`` before any work.
        tests/test_avatar_contract.py holds every adapter to this.
        """
