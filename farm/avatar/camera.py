"""Camera moves as per-frame transforms, shared by every model.

A move is a trajectory of virtual-camera windows over the (animated) portrait: each frame's window has a
zoom, an offset and a roll, eased in and out across the shot. previz warps its frames through the
windows directly; the diffusion model warps the reference portrait through them to make a camera
reference video that initialises its latents, and adds the move's prompt phrase.

Coordinates: offsets are fractions of the base window (the largest output-shaped crop of the portrait,
centred). Positive ``offset_x`` moves the camera right, so content moves left in frame; positive
``offset_y`` moves the camera down, so content moves up. Roll is in degrees, counter-clockwise.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import numpy as np
from PIL import Image

from farm.shotlist.types import CameraMove, CameraSpec

MAX_PUSH_ZOOM = 0.5
"""At 100 % intensity a push changes the zoom by this much (1.0 -> 1.5)."""
MAX_TRAVEL = 0.25
"""At 100 % intensity a pan or crane travels this fraction of the base window."""
MAX_SWING_SHIFT = 0.03
MAX_SWING_ROLL_DEGREES = 2.0


@dataclass(frozen=True)
class CameraWindow:
    zoom: float = 1.0
    offset_x: float = 0.0
    offset_y: float = 0.0
    roll_degrees: float = 0.0


def ease_in_out(t: float) -> float:
    """Smoothstep: zero velocity at both ends, so a move starts and settles gently."""
    t = min(max(t, 0.0), 1.0)
    return t * t * (3.0 - 2.0 * t)


def _progress(frames: int) -> Iterator[float]:
    for index in range(frames):
        yield ease_in_out(index / (frames - 1)) if frames > 1 else 0.0


Trajectory = Callable[[float, int, int, float], list[CameraWindow]]
"""(intensity 0..1, frames, seed, output aspect width/height) -> one window per frame."""


def _static(intensity: float, frames: int, seed: int, aspect: float) -> list[CameraWindow]:
    return [CameraWindow() for _ in range(frames)]


def _push(direction: int) -> Trajectory:
    def trajectory(intensity: float, frames: int, seed: int, aspect: float) -> list[CameraWindow]:
        span = MAX_PUSH_ZOOM * intensity
        start, end = (1.0, 1.0 + span) if direction > 0 else (1.0 + span, 1.0)
        return [CameraWindow(zoom=start + (end - start) * p) for p in _progress(frames)]

    return trajectory


def _travel(axis: str, direction: int) -> Trajectory:
    """Pans and cranes: zoom in just enough to have room, then travel across it."""

    def trajectory(intensity: float, frames: int, seed: int, aspect: float) -> list[CameraWindow]:
        travel = MAX_TRAVEL * intensity
        zoom = 1.0 / (1.0 - travel) if travel < 1 else 1.0
        windows = []
        for p in _progress(frames):
            offset = direction * travel * (p - 0.5)
            windows.append(
                CameraWindow(
                    zoom=zoom, offset_x=offset if axis == "x" else 0.0, offset_y=offset if axis == "y" else 0.0
                )
            )
        return windows

    return trajectory


def _swing(intensity: float, frames: int, seed: int, aspect: float) -> list[CameraWindow]:
    """Handheld: a few low-frequency sinusoids per axis with seeded phases; smooth and bounded.

    The zoom is the least that keeps the rolled, shifted window inside the portrait at the extremes,
    so no frame ever shows an empty corner.
    """
    rng = np.random.default_rng(seed)
    shift = MAX_SWING_SHIFT * intensity
    roll = math.radians(MAX_SWING_ROLL_DEGREES * intensity)
    rolled = max(math.cos(roll) + math.sin(roll) / aspect, math.cos(roll) + math.sin(roll) * aspect)
    zoom = rolled / (1.0 - 2.0 * shift)
    components = {
        axis: [(rng.uniform(0.15, 0.6), rng.uniform(0, 2 * math.pi), weight) for weight in (0.6, 0.3, 0.1)]
        for axis in ("x", "y", "roll")
    }

    def wobble(axis: str, seconds_like: float) -> float:
        return sum(w * math.sin(2 * math.pi * f * seconds_like + phase) for f, phase, w in components[axis])

    windows = []
    for index in range(frames):
        time = index / 25.0  # frequencies are per 25 frames; the trajectory is rate-independent enough
        windows.append(
            CameraWindow(
                zoom=zoom,
                offset_x=shift * wobble("x", time),
                offset_y=shift * wobble("y", time),
                roll_degrees=MAX_SWING_ROLL_DEGREES * intensity * wobble("roll", time),
            )
        )
    return windows


CAMERA_MOVES: dict[CameraMove, Trajectory] = {
    CameraMove.STATIC: _static,
    CameraMove.PUSH_IN: _push(+1),
    CameraMove.PUSH_OUT: _push(-1),
    CameraMove.PAN_LEFT: _travel("x", -1),
    CameraMove.PAN_RIGHT: _travel("x", +1),
    CameraMove.CRANE_UP: _travel("y", -1),
    CameraMove.CRANE_DOWN: _travel("y", +1),
    CameraMove.SWING: _swing,
}

CAMERA_PROMPTS: dict[CameraMove, str] = {
    CameraMove.STATIC: "static camera, locked-off shot",
    CameraMove.PUSH_IN: "the camera slowly pushes in toward the face",
    CameraMove.PUSH_OUT: "the camera slowly pulls back from the face",
    CameraMove.PAN_LEFT: "the camera pans slowly to the left",
    CameraMove.PAN_RIGHT: "the camera pans slowly to the right",
    CameraMove.CRANE_UP: "the camera cranes up smoothly",
    CameraMove.CRANE_DOWN: "the camera cranes down smoothly",
    CameraMove.SWING: "handheld camera with gentle natural sway",
}


FaceAnchor = tuple[float, float, float, float]
"""The head ``(left, top, right, bottom)`` in fractions of the base window (0..1 from its top-left)."""
FACE_MARGIN = 0.04
"""Anchored moves keep the head this share of the window inside each of its edges."""


def camera_trajectory(
    camera: CameraSpec, frames: int, *, aspect: float, seed: int = 0, face: FaceAnchor | None = None
) -> list[CameraWindow]:
    """One window per frame for ``camera`` at output ``aspect`` (width / height).

    Deterministic for a seed; intensity 0 is the static shot for every move. With ``face`` the move is
    anchored on it: a push ends centred on the face (as far as the portrait allows), and every window is
    shifted the least that keeps the head inside it, so no intensity takes the face out of frame.
    """
    if frames < 0:
        raise ValueError("frames must not be negative")
    windows = CAMERA_MOVES[camera.move](float(camera.intensity), frames, seed, aspect)
    if face is None:
        return windows
    if camera.move in (CameraMove.PUSH_IN, CameraMove.PUSH_OUT) and windows:
        widest, tightest = min(w.zoom for w in windows), max(w.zoom for w in windows)
        windows = [_toward_face(window, face, widest, tightest) for window in windows]
    return [_keep_face(window, face) for window in windows]


def _toward_face(window: CameraWindow, face: FaceAnchor, widest: float, tightest: float) -> CameraWindow:
    """A push's window moved toward the face in step with its zoom: centred on it at the tight end."""
    progress = (window.zoom - widest) / (tightest - widest) if tightest > widest else 0.0
    centre_x, centre_y = (face[0] + face[2]) / 2 - 0.5, (face[1] + face[3]) / 2 - 0.5
    return CameraWindow(
        window.zoom,
        window.offset_x + progress * centre_x,
        window.offset_y + progress * centre_y,
        window.roll_degrees,
    )


def _keep_face(window: CameraWindow, face: FaceAnchor) -> CameraWindow:
    """``window`` shifted the least that keeps the head (with margin) inside it and it inside the base."""
    half = 0.5 / window.zoom
    margin = FACE_MARGIN / window.zoom
    return CameraWindow(
        window.zoom,
        _clamp_axis(window.offset_x, face[0], face[2], half, margin),
        _clamp_axis(window.offset_y, face[1], face[3], half, margin),
        window.roll_degrees,
    )


def _clamp_axis(offset: float, low: float, high: float, half: float, margin: float) -> float:
    """One axis: the window [0.5 + offset - half, 0.5 + offset + half] must hold [low, high] and stay in [0, 1].

    When the head is larger than the window, the window is centred on it (the base bound still wins).
    """
    base = max(0.0, 0.5 - half)
    lowest, highest = high + margin - 0.5 - half, low - margin - 0.5 + half
    if lowest > highest:
        lowest = highest = (low + high) / 2 - 0.5
    clamped = min(max(offset, lowest), highest)
    return min(max(clamped, -base), base)


def camera_prompt_phrase(camera: CameraSpec) -> str:
    if camera.move is not CameraMove.STATIC and camera.intensity <= 0:
        return CAMERA_PROMPTS[CameraMove.STATIC]
    return CAMERA_PROMPTS[camera.move]


@dataclass(frozen=True)
class Framing:
    """The base window of a source image for an output size: centre and size in source pixels."""

    centre_x: float
    centre_y: float
    width: float
    height: float

    @classmethod
    def cover(cls, source_width: int, source_height: int, width: int, height: int) -> Framing:
        aspect = width / height
        if source_width / source_height > aspect:
            window_height = float(source_height)
            window_width = window_height * aspect
        else:
            window_width = float(source_width)
            window_height = window_width / aspect
        return cls(source_width / 2, source_height / 2, window_width, window_height)


def affine_for(window: CameraWindow, framing: Framing, width: int, height: int) -> tuple[float, ...]:
    """PIL AFFINE coefficients mapping output pixel (x, y) to source coordinates for ``window``."""
    scale_x = framing.width / window.zoom / width
    scale_y = framing.height / window.zoom / height
    centre_x = framing.centre_x + window.offset_x * framing.width
    centre_y = framing.centre_y + window.offset_y * framing.height
    angle = math.radians(window.roll_degrees)
    cos, sin = math.cos(angle), math.sin(angle)
    # source = centre + R(angle) @ (S @ (output - output_centre))
    a, b = cos * scale_x, -sin * scale_y
    d, e = sin * scale_x, cos * scale_y
    out_cx, out_cy = width / 2, height / 2
    c = centre_x - a * out_cx - b * out_cy
    f = centre_y - d * out_cx - e * out_cy
    return (a, b, c, d, e, f)


def render_window(source: Image.Image, framing: Framing, window: CameraWindow, width: int, height: int) -> np.ndarray:
    """The output frame (H, W, 3) uint8 that ``window`` sees of ``source`` (bilinear)."""
    frame = source.transform(
        (width, height),
        Image.Transform.AFFINE,
        affine_for(window, framing, width, height),
        resample=Image.Resampling.BILINEAR,
        fillcolor=None,
    )
    return np.asarray(frame)


def prepare_source(image: np.ndarray, width: int, height: int, headroom: float = 1.5) -> tuple[Image.Image, Framing]:
    """The portrait resized so its base window is ``headroom`` times the output size, and that window.

    Warping a huge photo down to 480 px every frame is slow and aliases; warping a 4096 px crop up when
    pushing in is blurry. Resizing once to a little more than the output gives both speed and detail.
    """
    source = Image.fromarray(image)
    base = Framing.cover(source.width, source.height, width, height)
    factor = min(1.0, headroom * width / base.width)
    if factor < 1.0:
        source = source.resize(
            (max(1, round(source.width * factor)), max(1, round(source.height * factor))), Image.Resampling.LANCZOS
        )
    return source, Framing.cover(source.width, source.height, width, height)


def render_camera_video(
    image: np.ndarray,
    camera: CameraSpec,
    frames: int,
    width: int,
    height: int,
    seed: int = 0,
    face: FaceAnchor | None = None,
) -> Iterator[np.ndarray]:
    """Yield the frames a camera move sees of a still portrait (the diffusion model's camera reference).

    ``image`` is the portrait already framed (cropped to the output aspect); ``face`` anchors the move.
    """
    source, framing = prepare_source(image, width, height)
    for window in camera_trajectory(camera, frames, aspect=width / height, seed=seed, face=face):
        yield render_window(source, framing, window, width, height)
