"""previz: a talking portrait rendered on the CPU, for timing, blocking and camera checks.

Editors judge timing on it, so the one thing it must get right is *when* the mouth moves: each frame's
opening comes from the loudness of exactly the audio samples inside that frame's time span. Everything
else is there so the preview reads as a person rather than a still: the jaw drops with the opening, the
eyes blink every few seconds, the head sways a little, and the camera move is the same one the final
model gets.

The pipeline, per shot:

1. ``prepare_source`` resizes the portrait once to a little more than the output size.
2. dlib finds the face; its 68 landmarks become a :class:`FaceRig` (what to move and where).
3. :func:`plan_performance` turns audio and seed into per-frame curves: mouth opening, eyelid closure,
   head pose.
4. Per frame, the jaw and eyelids are redrawn on the portrait by vertical resampling of small boxes,
   then one PIL mesh transform applies the head motion and the camera window together.

A portrait with no detectable face renders the camera move alone, with a warning on the shot. The
previous shot's frames (``request.continuation``) are not used: previz always starts from the reference
portrait, so consecutive shots of one character already match in colour. A segment of a long take
(``request.take_offset``) blinks, sways and moves its camera where the whole take would.
"""

from __future__ import annotations

import hashlib
import math
from collections import OrderedDict
from collections.abc import Iterator
from dataclasses import dataclass
from fractions import Fraction
from time import perf_counter
from typing import ClassVar

import numpy as np
from PIL import Image

from farm.avatar.base import (
    FrameSink,
    ProgressCallback,
    RenderRequest,
    RenderResult,
    check_request,
    face_anchor,
    framed_reference,
)
from farm.avatar.camera import CameraWindow, Framing, affine_for, camera_trajectory, prepare_source, render_window
from farm.avatar.two_shot import background, frame_speaker, lay_tiles, pixel_box, tile_alphas
from farm.catalog import ModelManifest
from farm.media.faces import Face, detect_faces, preload_face_models

CHUNK_FRAMES = 12
"""Frames handed to the sink at a time: memory stays flat however long the shot."""
MESH_CELL = 32
"""Output pixels per mesh cell; the head motion is smooth enough that bilinear cells this size are exact to ~0.1 px."""

# Mouth: loudness -> opening.
SILENCE_DB = -50.0
"""Frames quieter than this (dBFS RMS) keep the mouth closed: room tone and breaths don't talk."""
LOUDNESS_RANGE_DB = 20.0
"""The opening goes from closed to fully open over this many dB below the shot's loud syllables."""
LOUD_REFERENCE_PERCENTILE = 90.0
QUIET_REFERENCE_DB = -40.0
"""A shot whose loud syllables are quieter than this is treated as this loud (a whisper opens less)."""
SMOOTHING_KERNEL = np.array([0.25, 0.5, 0.25])
"""Symmetric, so the opening is smoothed without lag: a syllable's peak stays on its frame."""

# Geometry, in inter-ocular distances (IOD): the portrait's own scale.
MAX_JAW_DROP = 0.22
"""Lower-lip drop at full opening."""
JAW_FOLLOW = 0.85
"""The chin moves this fraction of the lower lip's drop."""
NECK_FALLOFF = 0.75
"""Below the jaw line the drop fades out over this distance."""
LID_BAND = 0.18
"""The skin above the upper lid that stretches down over the eye in a blink."""
LID_REACH = 1.15
"""dlib's eye corners sit a little inside the visible lids: the blink covers this much more width..."""
LID_OVERLAP = 1.1
"""...and closes a little past the lower-lid landmarks, so no sliver of eye shows through."""
HEAD_SWAY = (0.035, 0.025)
"""Horizontal and vertical sway amplitude of the head."""
HEAD_ROLL_DEGREES = 1.0
SPEECH_NOD = 0.03
"""Extra downward head motion while speaking loudly (a nod on emphasis)."""
MOUTH_SHADOW_RGB = np.array([34.0, 14.0, 17.0], dtype=np.float32)
"""The mouth interior just under the upper lip (or teeth)."""
MOUTH_TONGUE_RGB = np.array([112.0, 48.0, 52.0], dtype=np.float32)
"""What the interior shades toward at the lower lip."""

# Blinks, in seconds.
FIRST_BLINK = (0.3, 3.0)
BLINK_INTERVAL = (2.0, 6.0)
BLINK_CLOSE, BLINK_HOLD, BLINK_OPEN = 0.08, 0.06, 0.16

NO_FACE_WARNING = "no face found in the reference portrait; rendered the camera move only"


def smoothstep(t: np.ndarray | float) -> np.ndarray:
    t = np.clip(t, 0.0, 1.0)
    return t * t * (3.0 - 2.0 * t)


# --- audio -> per-frame curves ---------------------------------------------------------------------------


def frame_sample_edges(frames: int, sample_rate: int, fps: Fraction) -> np.ndarray:
    """Sample index where each frame's time span starts (plus the end), exactly: ceil(i * rate / fps)."""
    index = np.arange(frames + 1, dtype=np.int64)
    return -((-index * sample_rate * fps.denominator) // fps.numerator)


def frame_loudness(audio: np.ndarray, sample_rate: int, fps: Fraction, frames: int) -> np.ndarray:
    """RMS of the samples inside each frame's time span; samples missing past the end count as silence."""
    edges = frame_sample_edges(frames, sample_rate, fps)
    present = np.minimum(edges, len(audio))
    energy = np.concatenate([[0.0], np.cumsum(np.square(audio, dtype=np.float64))])
    summed = np.maximum(energy[present[1:]] - energy[present[:-1]], 0.0)
    return np.sqrt(summed / np.maximum(np.diff(edges), 1))


def mouth_opening(loudness: np.ndarray) -> np.ndarray:
    """Per-frame opening 0..1: decibels relative to the shot's loud syllables, gated, smoothed without lag."""
    level = 20.0 * np.log10(np.maximum(loudness, 1e-10))
    voiced = level > SILENCE_DB
    if not voiced.any():
        return np.zeros(len(loudness))
    reference = max(float(np.percentile(level[voiced], LOUD_REFERENCE_PERCENTILE)), QUIET_REFERENCE_DB)
    opening = np.clip((level - (reference - LOUDNESS_RANGE_DB)) / LOUDNESS_RANGE_DB, 0.0, 1.0)
    opening[~voiced] = 0.0
    padded = np.pad(opening, 1, mode="edge")
    return np.convolve(padded, SMOOTHING_KERNEL, mode="valid")


def blink_closure(frames: int, fps: Fraction, rng: np.random.Generator, offset: int = 0) -> np.ndarray:
    """Per-frame eyelid closure 0..1: quick blinks at seeded, irregular intervals of a few seconds.

    ``offset`` frames of the take come before these: a segment of a long take blinks where the whole
    take would, so a blink runs on across a seam.
    """
    times = (offset + np.arange(frames)) / float(fps)
    duration = (offset + frames) / float(fps)
    closure = np.zeros(frames)
    start = rng.uniform(*FIRST_BLINK)
    while start < duration:
        tau = times - start
        closing = smoothstep(tau / BLINK_CLOSE)
        opening = 1.0 - smoothstep((tau - BLINK_CLOSE - BLINK_HOLD) / BLINK_OPEN)
        closure = np.maximum(closure, np.where(tau >= 0, np.minimum(closing, opening), 0.0))
        start += rng.uniform(*BLINK_INTERVAL)
    return closure


def _sway(times: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A smooth, bounded wobble in [-1, 1]: three slow sinusoids with seeded frequencies and phases."""
    total = np.zeros_like(times)
    for weight in (0.6, 0.3, 0.1):
        total += weight * np.sin(2 * math.pi * rng.uniform(0.05, 0.3) * times + rng.uniform(0, 2 * math.pi))
    return total


@dataclass(frozen=True)
class Performance:
    """What the face does on every frame of a shot."""

    mouth: np.ndarray
    """Opening 0..1."""
    blink: np.ndarray
    """Eyelid closure 0..1."""
    head_x: np.ndarray
    """Head shift in IOD (positive: right)."""
    head_y: np.ndarray
    """Head shift in IOD (positive: down)."""
    head_roll: np.ndarray
    """Head roll in degrees (positive: counter-clockwise on screen)."""


def plan_performance(
    audio: np.ndarray, sample_rate: int, fps: Fraction, frames: int, seed: int, offset: int = 0
) -> Performance:
    """Audio and seed -> per-frame curves; blinks and sway draw from separate seeded streams.

    ``offset``: the frames of the take before these (a segment of a long take), so blinks and sway are
    the whole take's, continuous across its seams; the mouth follows the segment's own audio.
    """
    if frames <= 0:
        return Performance(*(np.zeros(0) for _ in range(5)))
    mouth = mouth_opening(frame_loudness(audio, sample_rate, fps, frames))
    blink_rng, sway_rng = (np.random.default_rng([seed % 2**63, stream]) for stream in (1, 2))
    times = (offset + np.arange(frames)) / float(fps)
    half_second = max(1, round(float(fps) / 2))
    emphasis = np.convolve(np.pad(mouth, half_second, mode="edge"), np.ones(2 * half_second + 1), mode="valid")
    emphasis /= 2 * half_second + 1
    return Performance(
        mouth=mouth,
        blink=blink_closure(frames, fps, blink_rng, offset),
        head_x=HEAD_SWAY[0] * _sway(times, sway_rng),
        head_y=HEAD_SWAY[1] * _sway(times, sway_rng) + SPEECH_NOD * emphasis,
        head_roll=HEAD_ROLL_DEGREES * _sway(times, sway_rng),
    )


# --- the face rig: landmarks -> what moves where ---------------------------------------------------------


def _profile(points: np.ndarray, xs: np.ndarray) -> np.ndarray:
    """y of the polyline through ``points`` (x, y) at ``xs``, constant beyond its ends."""
    order = np.argsort(points[:, 0], kind="stable")
    return np.interp(xs, points[order, 0], points[order, 1])


def _resample_rows(image: np.ndarray, rows: np.ndarray, x0: int) -> np.ndarray:
    """``image`` sampled at fractional row positions ``rows`` (h, w), column x0 + j for column j (bilinear in y)."""
    top = np.clip(np.floor(rows).astype(np.intp), 0, image.shape[0] - 2)
    fraction = np.clip(rows - top, 0.0, 1.0, dtype=np.float32)[..., None]
    columns = np.arange(x0, x0 + rows.shape[1])
    upper = image[top, columns].astype(np.float32)
    lower = image[top + 1, columns].astype(np.float32)
    return upper + (lower - upper) * fraction


@dataclass(frozen=True)
class Box:
    left: int
    top: int
    right: int
    bottom: int

    @classmethod
    def around(cls, left: float, top: float, right: float, bottom: float, width: int, height: int) -> Box:
        return cls(
            max(0, math.floor(left)),
            max(0, math.floor(top)),
            min(width, math.ceil(right)),
            min(height, math.ceil(bottom)),
        )

    def grid(self) -> tuple[np.ndarray, np.ndarray]:
        """Pixel-centre coordinates (xs, ys) of the box, each (h, w) float."""
        ys, xs = np.mgrid[self.top : self.bottom, self.left : self.right]
        return xs.astype(np.float64), ys.astype(np.float64)


@dataclass(frozen=True)
class JawRig:
    """The lower face: below the lower lip everything drops by ``drop * weight``; a dark gap opens above it.

    The weight field is fixed for a portrait (it is the shape of the motion); a frame only scales it, so
    the per-frame cost is one vertical resample of a small box.
    """

    box: Box
    split: np.ndarray
    """(w,) y of the lower inner lip per column: above it nothing moves."""
    lip: np.ndarray
    """(w,) how far the lower lip drops per column, relative to its centre (0 at the mouth corners)."""
    weight: np.ndarray
    """(h, w) drop per unit opening, in pixels per pixel of lower-lip drop."""
    max_drop: float
    """Lower-lip drop at full opening, in pixels."""

    @classmethod
    def from_landmarks(cls, marks: np.ndarray, scale: float, width: int, height: int) -> JawRig:
        jaw_line = marks[2:15]
        neck = NECK_FALLOFF * scale
        box = Box.around(
            jaw_line[:, 0].min(),
            marks[[48, 54, 60, 64]][:, 1].min() - 2,
            jaw_line[:, 0].max() + 1,
            jaw_line[:, 1].max() + neck + 1,
            width,
            height,
        )
        xs, ys = box.grid()
        columns = xs[0]
        split = _profile(marks[[48, 67, 66, 65, 54]], columns)
        chin = _profile(jaw_line, columns)
        left, right = marks[48, 0], marks[54, 0]
        half_mouth = max((right - left) / 2, 1.0)
        across = (columns - (left + right) / 2) / half_mouth
        lip = np.clip(1.0 - across**2, 0.0, 1.0) ** 0.8
        jaw_left, jaw_right = marks[3, 0], marks[13, 0]
        plateau = np.minimum(
            smoothstep((columns - jaw_left) / max(left - jaw_left, 1.0)),
            smoothstep((jaw_right - columns) / max(jaw_right - right, 1.0)),
        )
        chin_follow = JAW_FOLLOW * plateau
        depth = smoothstep((ys - split) / np.maximum(chin - split, 1.0))
        fade = 1.0 - smoothstep((ys - chin) / neck)
        weight = np.where(ys >= split, (lip + (chin_follow - lip) * depth) * fade, 0.0)
        return cls(
            box=box,
            split=split.astype(np.float32),
            lip=lip.astype(np.float32),
            weight=weight.astype(np.float32),
            max_drop=MAX_JAW_DROP * scale,
        )

    def draw(self, source: np.ndarray, opening: float) -> np.ndarray:
        """The box's pixels with the jaw dropped by ``opening`` (0..1) and the mouth interior painted dark."""
        box = self.box
        if opening <= 0.0:
            return source[box.top : box.bottom, box.left : box.right]
        drop = opening * self.max_drop
        rows = np.arange(box.top, box.bottom, dtype=np.float32)[:, None]
        sampled_rows = rows - drop * self.weight
        pixels = _resample_rows(source, sampled_rows, box.left)
        # Inside the gap a pixel would sample from above the lip line: that is the open mouth. Only the
        # rows the gap can reach are shaded.
        first = max(0, math.floor(self.split.min()) - box.top)
        last = min(len(rows), math.ceil(self.split.max() + drop) + 1 - box.top)
        band = slice(first, last)
        gap = self.split - sampled_rows[band]
        inside = np.clip(gap, 0.0, 1.0) * np.clip(rows[band] - self.split + 0.5, 0.0, 1.0)
        toward_lip = 1.0 - np.clip(gap / np.maximum(drop * self.lip, 1.0), 0.0, 1.0)
        interior = MOUTH_SHADOW_RGB + (MOUTH_TONGUE_RGB - MOUTH_SHADOW_RGB) * (0.35 * toward_lip**3)[..., None]
        pixels[band] += (interior - pixels[band]) * inside[..., None]
        return np.clip(pixels + 0.5, 0, 255).astype(np.uint8)


@dataclass(frozen=True)
class EyeRig:
    """One eye: in a blink the skin above the upper lid stretches down until the lid meets the lower lid."""

    box: Box
    upper: np.ndarray
    """(w,) y of the upper lid per column."""
    aperture: np.ndarray
    """(w,) open height of the eye per column (0 at the corners)."""
    band: float

    @classmethod
    def from_landmarks(
        cls, upper_lid: np.ndarray, lower_lid: np.ndarray, scale: float, width: int, height: int
    ) -> EyeRig:
        band = LID_BAND * scale
        centre_x = upper_lid[:, 0].mean()
        half_width = (upper_lid[:, 0].max() - upper_lid[:, 0].min()) / 2 * LID_REACH
        box = Box.around(
            centre_x - half_width,
            upper_lid[:, 1].min() - band,
            centre_x + half_width + 1,
            lower_lid[:, 1].max() + 2,
            width,
            height,
        )
        columns = box.grid()[0][0]
        stretched = centre_x + (columns - centre_x) / LID_REACH
        upper = _profile(upper_lid, stretched)
        lower = _profile(lower_lid, stretched)
        inside = np.abs(columns - centre_x) < half_width
        aperture = np.where(inside, np.maximum(lower - upper, 0.0) * LID_OVERLAP, 0.0)
        return cls(box=box, upper=upper, aperture=aperture, band=band)

    def draw(self, source: np.ndarray, closure: float) -> np.ndarray:
        box = self.box
        if closure <= 0.0:
            return source[box.top : box.bottom, box.left : box.right]
        rows = np.arange(box.top, box.bottom, dtype=np.float64)[:, None]
        skin_top = self.upper - self.band
        lid = self.upper + closure * self.aperture
        compressed = skin_top + (rows - skin_top) * self.band / (self.band + closure * self.aperture)
        sampled_rows = np.where((rows >= skin_top) & (rows <= lid), compressed, rows)
        return np.clip(_resample_rows(source, sampled_rows, box.left) + 0.5, 0, 255).astype(np.uint8)


@dataclass(frozen=True)
class HeadRig:
    """The head moves rigidly inside an ellipse around face and hair, fading out over its rim."""

    centre: tuple[float, float]
    radii: tuple[float, float]
    pivot: tuple[float, float]
    """Roll pivot: the top of the neck."""

    @classmethod
    def from_landmarks(cls, marks: np.ndarray) -> HeadRig:
        face_width = marks[16, 0] - marks[0, 0]
        top = marks[17:27, 1].min() - 0.5 * face_width
        bottom = marks[8, 1] + 0.05 * face_width
        centre = ((marks[0, 0] + marks[16, 0]) / 2, (top + bottom) / 2)
        return cls(
            centre=centre,
            radii=(0.6 * face_width, (bottom - top) / 2),
            pivot=(marks[8, 0], marks[8, 1] + 0.3 * face_width),
        )

    def weight(self, xs: np.ndarray, ys: np.ndarray) -> np.ndarray:
        """How much of the head's motion a point follows: 1 inside the ellipse, 0 beyond 1.45 radii."""
        radius = np.hypot((xs - self.centre[0]) / self.radii[0], (ys - self.centre[1]) / self.radii[1])
        return 1.0 - smoothstep((radius - 1.0) / 0.45)

    def displace(
        self, xs: np.ndarray, ys: np.ndarray, weight: np.ndarray, shift: tuple[float, float], roll_degrees: float
    ) -> tuple[np.ndarray, np.ndarray]:
        """Where points (xs, ys) of the moved head come from in the still portrait."""
        angle = math.radians(roll_degrees)
        cos, sin = math.cos(angle), math.sin(angle)
        px, py = self.pivot
        # Screen y points down, so a counter-clockwise roll on screen is a clockwise rotation in (x, y).
        rel_x, rel_y = xs - shift[0] - px, ys - shift[1] - py
        back_x = px + cos * rel_x - sin * rel_y
        back_y = py + sin * rel_x + cos * rel_y
        return xs + weight * (back_x - xs), ys + weight * (back_y - ys)


@dataclass(frozen=True)
class FaceRig:
    scale: float
    """Inter-ocular distance in source pixels."""
    jaw: JawRig
    eyes: tuple[EyeRig, EyeRig]
    head: HeadRig

    @classmethod
    def from_face(cls, face: Face, width: int, height: int) -> FaceRig:
        marks = face.landmarks
        scale = float(np.linalg.norm(marks[42:48].mean(axis=0) - marks[36:42].mean(axis=0)))
        eyes = (
            EyeRig.from_landmarks(marks[36:40], marks[[36, 41, 40, 39]], scale, width, height),
            EyeRig.from_landmarks(marks[42:46], marks[[42, 47, 46, 45]], scale, width, height),
        )
        return cls(
            scale=scale,
            jaw=JawRig.from_landmarks(marks, scale, width, height),
            eyes=eyes,
            head=HeadRig.from_landmarks(marks),
        )


# --- frames -------------------------------------------------------------------------------------------------


def _mesh_grid(width: int, height: int) -> tuple[np.ndarray, np.ndarray]:
    xs = np.unique(np.r_[np.arange(0, width, MESH_CELL), width]).astype(np.float64)
    ys = np.unique(np.r_[np.arange(0, height, MESH_CELL), height]).astype(np.float64)
    return np.meshgrid(xs, ys)


MeshCell = tuple[tuple[int, int, int, int], tuple[float, ...]]


def camera_head_mesh(
    window: CameraWindow,
    framing: Framing,
    width: int,
    height: int,
    head: HeadRig,
    shift: tuple[float, float],
    roll_degrees: float,
) -> list[MeshCell]:
    """PIL MESH data: output cells -> source quads, through the camera window and then the head motion.

    Cells the head motion doesn't reach are plain camera affine, so runs of them along a row merge into
    one quad: PIL spends a few microseconds of Python on every quad.
    """
    grid_x, grid_y = _mesh_grid(width, height)
    a, b, c, d, e, f = affine_for(window, framing, width, height)
    camera_x, camera_y = a * grid_x + b * grid_y + c, d * grid_x + e * grid_y + f
    weight = head.weight(camera_x, camera_y)
    source_x, source_y = head.displace(camera_x, camera_y, weight, shift, roll_degrees)
    moving = (weight[:-1, :-1] > 0) | (weight[1:, :-1] > 0) | (weight[:-1, 1:] > 0) | (weight[1:, 1:] > 0)
    xs, ys = grid_x[0].astype(int).tolist(), grid_y[:, 0].astype(int).tolist()
    sx, sy = source_x.tolist(), source_y.tolist()
    cells: list[MeshCell] = []
    for row, moving_row in enumerate(moving.tolist()):
        column = 0
        while column < len(moving_row):
            end = column + 1
            if not moving_row[column]:
                while end < len(moving_row) and not moving_row[end]:
                    end += 1
            top, bottom = row, row + 1
            # PIL's quad order: upper-left, lower-left, lower-right, upper-right.
            quad = (
                sx[top][column], sy[top][column], sx[bottom][column], sy[bottom][column],
                sx[bottom][end], sy[bottom][end], sx[top][end], sy[top][end],
            )  # fmt: skip
            cells.append(((xs[column], ys[top], xs[end], ys[bottom]), quad))
            column = end
    return cells


class PortraitAnimator:
    """Draws one frame at a time: face features onto a working copy of the portrait, then head + camera."""

    def __init__(self, source: Image.Image, framing: Framing, rig: FaceRig | None, width: int, height: int) -> None:
        self.still = np.asarray(source)
        self.canvas = source.copy()
        self.framing = framing
        self.rig = rig
        self.width, self.height = width, height

    def frame(self, window: CameraWindow, performance: Performance, index: int) -> np.ndarray:
        if self.rig is None:
            return render_window(self.canvas, self.framing, window, self.width, self.height)
        rig = self.rig
        self._paste(rig.jaw.box, rig.jaw.draw(self.still, float(performance.mouth[index])))
        for eye in rig.eyes:
            self._paste(eye.box, eye.draw(self.still, float(performance.blink[index])))
        shift = (performance.head_x[index] * rig.scale, performance.head_y[index] * rig.scale)
        mesh = camera_head_mesh(
            window, self.framing, self.width, self.height, rig.head, shift, float(performance.head_roll[index])
        )
        moved = self.canvas.transform(
            (self.width, self.height), Image.Transform.MESH, mesh, resample=Image.Resampling.BILINEAR
        )
        return np.asarray(moved)

    def _paste(self, box: Box, pixels: np.ndarray) -> None:
        if pixels.size == 0:  # a feature entirely outside the portrait
            return
        self.canvas.paste(Image.fromarray(np.ascontiguousarray(pixels)), (box.left, box.top))


# --- the model ------------------------------------------------------------------------------------------------

_RIG_CACHE_SIZE = 16


class PrevizModel:
    """The ``previz`` adapter: CPU only, no weights; dlib's landmark model is its only file."""

    code_version: ClassVar[str] = "previz-3"
    pixel_inputs: ClassVar[frozenset[str]] = frozenset(
        {"reference_image", "audio", "camera", "fps", "width", "height", "frames", "seed", "framing", "speakers"}
    )
    """No prompt, negative prompt, steps or guidance, and no continuation: a prompt edit re-renders nothing."""

    def __init__(self, manifest: ModelManifest) -> None:
        self.manifest = manifest
        self._rigs: OrderedDict[str, tuple[FaceRig | None, tuple[str, ...]]] = OrderedDict()

    def load(self, device: str) -> None:
        """previz runs on the CPU whatever the device; loading dlib's models now spares the first shot."""
        preload_face_models()

    def render(self, request: RenderRequest, sink: FrameSink, progress: ProgressCallback) -> RenderResult:
        check_request(request, self.manifest)
        started = perf_counter()
        if request.speakers:
            chunks, warnings = self._two_shot_chunks(request)
        else:
            chunks, warnings = self._chunks(
                framed_reference(request), request.audio, request, request.width, request.height, request.seed,
                face=face_anchor(request),
            )  # fmt: skip
        detected = perf_counter()
        keep = max(1, self.manifest.continuation_frames)
        last_frames = np.zeros((0, request.height, request.width, 3), np.uint8)
        written = 0
        for chunk in chunks:
            sink.write(chunk)
            written += len(chunk)
            last_frames = np.concatenate([last_frames, chunk[-keep:]])[-keep:]
            progress(written / request.frames, "animate")

        finished = perf_counter()
        return RenderResult(
            frames_written=request.frames,
            last_frames=last_frames,
            timings={"detect": detected - started, "animate": finished - detected, "total": finished - started},
            warnings=warnings,
        )

    def _chunks(
        self,
        portrait: np.ndarray,
        audio: np.ndarray,
        request: RenderRequest,
        width: int,
        height: int,
        seed: int,
        *,
        face: tuple[float, float, float, float] | None = None,
    ) -> tuple[Iterator[np.ndarray], tuple[str, ...]]:
        """One face animated by ``audio`` at ``width`` x ``height``: the rig now, the frames lazily in chunks.
        ``face``: the head in fractions of the portrait, which camera moves keep in frame."""
        source, framing = prepare_source(portrait, width, height)
        rig, warnings = self._rig_for(np.asarray(source))
        offset = request.take_offset
        performance = plan_performance(audio, request.sample_rate, request.fps, request.frames, seed, offset)
        # A segment of a long take takes its stretch of the whole take's camera move.
        windows = camera_trajectory(
            request.camera, request.take_length, aspect=width / height, seed=request.seed, face=face
        )[offset : offset + request.frames]
        animator = PortraitAnimator(source, framing, rig, width, height)

        def frames() -> Iterator[np.ndarray]:
            for start in range(0, request.frames, CHUNK_FRAMES):
                stop = min(start + CHUNK_FRAMES, request.frames)
                chunk = np.empty((stop - start, height, width, 3), np.uint8)
                for index in range(start, stop):
                    chunk[index - start] = animator.frame(windows[index], performance, index)
                yield chunk

        return frames(), warnings

    def _two_shot_chunks(self, request: RenderRequest) -> tuple[Iterator[np.ndarray], tuple[str, ...]]:
        """Each speaker framed on their own face in their own region and animated by their own speech
        (their own blinks and sway too: seeds differ per speaker), composited over the layout's
        background; the camera move is the shot's, the same in every region."""
        boxes = [pixel_box(speaker.region, request.width, request.height) for speaker in request.speakers]
        streams, warnings = [], []
        for index, (speaker, box) in enumerate(zip(request.speakers, boxes, strict=True)):
            framed, framing, framing_warnings = frame_speaker(speaker, box)
            stream, rig_warnings = self._chunks(
                framed, speaker.audio, request, box.width, box.height, request.seed + index,
                face=framing.head_fractions(),
            )  # fmt: skip
            streams.append(stream)
            warnings += [*framing_warnings, *(f"{speaker.character_id}: {w}" for w in rig_warnings)]
        canvas = background(request.speakers, request.layout, request.width, request.height)
        alphas = tile_alphas(boxes, request.layout, request.width, request.height)

        def frames() -> Iterator[np.ndarray]:
            for tiles in zip(*streams, strict=True):
                chunk = np.repeat(canvas[None], len(tiles[0]), axis=0)
                for index in range(len(chunk)):
                    lay_tiles(chunk[index], [tile[index] for tile in tiles], boxes, request.layout, alphas)
                yield chunk

        return frames(), tuple(warnings)

    def _rig_for(self, portrait: np.ndarray) -> tuple[FaceRig | None, tuple[str, ...]]:
        """The face rig of a prepared portrait, memoised: a worker renders many shots of the same few faces."""
        key = hashlib.sha256(portrait.tobytes()).hexdigest() + str(portrait.shape)
        if key not in self._rigs:
            self._rigs[key] = _rig(portrait)
            while len(self._rigs) > _RIG_CACHE_SIZE:
                self._rigs.popitem(last=False)
        self._rigs.move_to_end(key)
        return self._rigs[key]


def _rig(portrait: np.ndarray) -> tuple[FaceRig | None, tuple[str, ...]]:
    faces = detect_faces(portrait)
    if not faces and max(portrait.shape[:2]) < 2000:
        faces = detect_faces(portrait, upsample=1)  # faces under ~80 px are found at twice the size
    if not faces:
        return None, (NO_FACE_WARNING,)
    height, width = portrait.shape[:2]
    rig = FaceRig.from_face(faces[0], width, height)
    if len(faces) > 1:
        return rig, (f"{len(faces)} faces found in the reference portrait; animated the largest",)
    return rig, ()
