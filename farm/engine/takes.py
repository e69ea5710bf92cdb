"""A take longer than its model's window, rendered segment by segment with flat memory.

The planner cut the take at speech pauses (``ShotTask.segments``). Here each segment is one model
render: it continues from the last frames of the segment before (the model's ordinary
``Continuation``), carries the take's frame offset so camera moves and blinks run on across the seam,
and writes its frames straight into the shot's one video file. Only one segment's audio and the few
continuation frames are ever in memory, so a 30-minute monologue needs what a 30-second one does.

Every ``reanchor_every``-th segment is re-anchored: the frames it continues from are colour-matched to
the reference portrait first, so the slow drift a chain of continuations accumulates is pulled back to
the reference before it can be seen (the model conditions on the reference portrait in every segment,
which holds identity; colour is what drifts).
"""

from __future__ import annotations

import ctypes
import functools
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from fractions import Fraction
from time import perf_counter

import numpy as np
from PIL import Image

from farm.avatar.base import AvatarModel, Continuation, FrameSink, ProgressCallback, RenderRequest
from farm.errors import RenderError
from farm.media.audio import seconds_to_samples

SegmentAudio = Callable[[int], np.ndarray]
"""Segment index -> that segment's int16 samples at the model rate (exactly its frames long)."""

STATS_WIDTH = 64
"""Colour statistics are taken on images reduced to this width: means and spreads need no detail."""


@dataclass(frozen=True)
class TakeSegment:
    index: int
    first_frame: int
    frames: int
    first_sample: int
    end_sample: int
    reanchor: bool
    """Its continuation is colour-matched to the reference portrait before it is rendered."""


@dataclass(frozen=True)
class TakeResult:
    frames_written: int
    last_frames: np.ndarray
    seams: tuple[int, ...]
    """The first frame of each segment after the first (within the shot)."""
    reanchored: tuple[int, ...]
    """Indices of the segments that were re-anchored to the reference."""
    timings: dict[str, float] = field(default_factory=dict)
    warnings: tuple[str, ...] = ()
    levers: Mapping[str, str | int | float | bool] = field(default_factory=dict)
    """As the segments' renders applied them (a segment that ran differently overrides the ones before)."""


def take_segments(frames: Sequence[int], fps: Fraction, reanchor_every: int) -> tuple[TakeSegment, ...]:
    """Each segment's frames and audio samples; every ``reanchor_every``-th (after the first) re-anchors.

    Sample edges are rounded from the cumulative frame position, as the planner cuts the shot's audio,
    so the segments' samples add up to exactly the shot's.
    """
    segments, first = [], 0
    for index, count in enumerate(frames):
        end = first + count
        segments.append(
            TakeSegment(
                index=index,
                first_frame=first,
                frames=count,
                first_sample=seconds_to_samples(Fraction(first) / fps),
                end_sample=seconds_to_samples(Fraction(end) / fps),
                reanchor=index > 0 and reanchor_every > 0 and index % reanchor_every == 0,
            )
        )
        first = end
    return tuple(segments)


def render_take(
    model: AvatarModel,
    request: RenderRequest,
    segments: Sequence[int],
    reanchor_every: int,
    audio: SegmentAudio,
    sink: FrameSink,
    progress: ProgressCallback,
) -> TakeResult:
    """Render ``request`` (the whole take; its ``audio`` is unused) as ``segments`` into ``sink``.

    The first segment continues from ``request.continuation`` (the shot it ``continues``), every later one
    from the segment before. Raises RenderError when a segment's frames do not add up.
    """
    plan = take_segments(segments, request.fps, reanchor_every)
    if sum(segment.frames for segment in plan) != request.frames:
        raise RenderError(
            f"shot {request.shot_id}: its segments have {sum(segments)} frames, the shot {request.frames}; "
            "plan the shot list again"
        )
    started = perf_counter()
    reference = colour_stats(_framed(request.reference_image, request.width, request.height))
    continuation = request.continuation
    written, warnings = 0, []
    levers: dict[str, str | int | float | bool] = {}
    for segment in plan:
        if segment.reanchor and continuation is not None:
            continuation = Continuation(match_colour(continuation.last_frames, reference))
        samples = audio(segment.index)
        if len(samples) != segment.end_sample - segment.first_sample:
            raise RenderError(
                f"shot {request.shot_id}: segment {segment.index + 1} has {len(samples)} audio samples, "
                f"expected {segment.end_sample - segment.first_sample}"
            )
        part = replace(
            request,
            audio=samples.astype(np.float32) / 32768.0,
            frames=segment.frames,
            continuation=continuation,
            take_offset=segment.first_frame,
            take_frames=request.frames,
        )
        result = model.render(part, sink, _segment_progress(progress, segment, request.frames))
        if result.frames_written != segment.frames:
            raise RenderError(
                f"shot {request.shot_id}: segment {segment.index + 1} wrote {result.frames_written} frames, "
                f"expected {segment.frames}"
            )
        written += result.frames_written
        warnings.extend(warning for warning in result.warnings if warning not in warnings)
        levers.update(result.levers)
        continuation = Continuation(result.last_frames)
        del part, samples
        release_free_memory()
    assert continuation is not None
    return TakeResult(
        frames_written=written,
        last_frames=continuation.last_frames,
        seams=tuple(segment.first_frame for segment in plan[1:]),
        reanchored=tuple(segment.index for segment in plan if segment.reanchor),
        timings={"segments": float(len(plan)), "total": perf_counter() - started},
        warnings=tuple(warnings),
        levers=levers,
    )


def release_free_memory() -> None:
    """Hand the allocator's free memory back to the system between segments.

    glibc raises its mmap threshold after large blocks are freed, so a model's per-chunk frame buffers
    can end up on the heap, where free fragments of them stay resident; ``malloc_trim`` returns the free
    pages, a cheap precaution once per segment. Elsewhere (not glibc) this does nothing.
    """
    trim = _malloc_trim()
    if trim is not None:
        trim(0)


@functools.cache
def _malloc_trim() -> Callable[[int], int] | None:
    try:
        return ctypes.CDLL("libc.so.6").malloc_trim
    except (OSError, AttributeError):
        return None


def _segment_progress(progress: ProgressCallback, segment: TakeSegment, total: int) -> ProgressCallback:
    def report(fraction: float, phase: str) -> None:
        progress((segment.first_frame + fraction * segment.frames) / total, phase)

    return report


@dataclass(frozen=True)
class ColourStats:
    mean: np.ndarray
    """(3,) per-channel mean (0-255)."""
    std: np.ndarray
    """(3,) per-channel standard deviation."""


def colour_stats(image: np.ndarray) -> ColourStats:
    small = _reduced(image).reshape(-1, 3).astype(np.float64)
    return ColourStats(small.mean(axis=0), small.std(axis=0))


def match_colour(frames: np.ndarray, target: ColourStats) -> np.ndarray:
    """``frames`` with each channel's mean and spread moved to ``target``'s (one transfer for them all,
    measured on the last frame, so the frames stay consistent with each other)."""
    current = colour_stats(frames[-1])
    gain = target.std / np.maximum(current.std, 1.0)
    matched = (frames.astype(np.float32) - current.mean) * gain + target.mean
    return np.clip(matched + 0.5, 0, 255).astype(np.uint8)


def _framed(image: np.ndarray, width: int, height: int) -> np.ndarray:
    """The centred output-shaped crop of the portrait: what the frames show of it before any camera move."""
    picture = Image.fromarray(np.asarray(image)).convert("RGB")
    scale = max(width / picture.width, height / picture.height)
    crop_w, crop_h = width / scale, height / scale
    left, top = (picture.width - crop_w) / 2, (picture.height - crop_h) / 2
    size = (STATS_WIDTH, max(1, round(STATS_WIDTH * height / width)))
    box = (left, top, left + crop_w, top + crop_h)
    return np.asarray(picture.resize(size, Image.Resampling.BILINEAR, box=box))


def _reduced(image: np.ndarray) -> np.ndarray:
    step = max(1, image.shape[1] // STATS_WIDTH)
    return np.ascontiguousarray(image[::step, ::step])


def array_segments(samples: np.ndarray, segments: Sequence[int], fps: Fraction) -> SegmentAudio:
    """A take's audio held as one array, served segment by segment (views, no copies)."""
    plan = take_segments(segments, fps, 0)
    return lambda index: samples[plan[index].first_sample : plan[index].end_sample]


def split_audio(samples: np.ndarray, segments: Sequence[int], fps: Fraction) -> list[np.ndarray]:
    """A take's audio cut into its segments' pieces (copies, so each can be shipped and freed alone)."""
    return [samples[s.first_sample : s.end_sample].copy() for s in take_segments(segments, fps, 0)]
