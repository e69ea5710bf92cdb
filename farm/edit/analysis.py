"""One decoding pass per shot that measures what the picture checks need, and keeps nothing else.

Per frame it keeps two numbers (mean luma and the mean absolute difference to the previous frame), plus
the Lab statistics of the first and last half second, two small JPEG thumbnails and the faces of three
sampled frames. A 1,000-shot edit therefore needs a few megabytes, never its frames.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

import numpy as np
from PIL import Image

from farm.edit.timeline import EditShot
from farm.errors import MediaError
from farm.media.faces import detect_faces, face_descriptor
from farm.media.image import load_rgb
from farm.media.video import read_frames

EDGE_SECONDS = 0.5
"""Colour at a cut is the mean over this much of each side (robust to one odd frame)."""
FACE_SAMPLES = (0.15, 0.5, 0.85)
"""Where in a shot its faces are sampled, as fractions of its length."""
CHANGE_LEVELS = 3.0
"""A pixel has changed when its luma moved by more than this (0-255): above encoding noise."""
THUMB_WIDTH = 240
ANALYSIS_WIDTH = 96
"""Lab statistics are taken on frames reduced to this width: colour means do not need detail."""
MIN_FACE_DETECTION_HEIGHT = 400
"""Below this frame height dlib's HOG detector is run on a 2x upsampled frame (it needs ~80 px faces)."""


@dataclass(frozen=True)
class LabStats:
    mean: tuple[float, float, float]
    """Mean L*, a*, b* (CIE Lab, D65)."""
    lightness_std: float
    """Standard deviation of L* over the pixels: the exposure's contrast."""


@dataclass(frozen=True)
class ShotAnalysis:
    shot_id: str
    frames: int
    luma: np.ndarray = field(repr=False)
    """Mean luma (0-255) of every frame."""
    luma_std: np.ndarray = field(repr=False)
    """Spatial standard deviation of luma of every frame."""
    motion: np.ndarray = field(repr=False)
    """Mean absolute luma difference to the previous frame (0-255); motion[0] is 0."""
    changed: np.ndarray = field(repr=False)
    """Fraction of pixels whose luma changed by more than CHANGE_LEVELS since the previous frame."""
    head: LabStats
    tail: LabStats
    first_thumbnail: bytes = field(repr=False)
    last_thumbnail: bytes = field(repr=False)
    faces: tuple[np.ndarray, ...] = field(repr=False, default=())
    """128-d identity descriptors of the largest face in each sampled frame that has one."""
    face_frames: tuple[int, ...] = ()
    """The sampled frame indices (within the shot) that were searched for faces."""

    @property
    def identity(self) -> np.ndarray | None:
        """The shot's identity: the mean descriptor of its sampled faces; None when none was found."""
        return np.mean(self.faces, axis=0) if self.faces else None


@dataclass(frozen=True)
class EditAnalysis:
    shots: dict[str, ShotAnalysis]

    def __getitem__(self, shot_id: str) -> ShotAnalysis:
        return self.shots[shot_id]


def analyse_edit(shots: Sequence[EditShot], *, faces: bool = True) -> EditAnalysis:
    return EditAnalysis({shot.shot_id: analyse_shot(shot, faces=faces) for shot in shots})


def analyse_shot(shot: EditShot, *, faces: bool = True) -> ShotAnalysis:
    edge = max(1, round(EDGE_SECONDS * shot.fps))
    face_frames = sorted({min(shot.frames - 1, int(position * shot.frames)) for position in FACE_SAMPLES})
    luma: list[float] = []
    luma_std: list[float] = []
    motion: list[float] = []
    changed: list[float] = []
    head_pixels: list[np.ndarray] = []
    tail_pixels: list[np.ndarray] = []
    sampled: list[np.ndarray] = []
    first = last = None
    previous: np.ndarray | None = None
    for index, frame in enumerate(read_frames(shot.video)):
        grey = _luma(frame)
        luma.append(float(grey.mean()))
        luma_std.append(float(grey.std()))
        difference = np.abs(grey - previous) if previous is not None else np.zeros_like(grey)
        motion.append(float(difference.mean()))
        changed.append(float(np.count_nonzero(difference > CHANGE_LEVELS)) / difference.size)
        previous = grey
        small = _reduce(frame)
        if index < edge:
            head_pixels.append(small)
        tail_pixels.append(small)
        if len(tail_pixels) > edge:
            tail_pixels.pop(0)
        if first is None:
            first = frame
        last = frame
        if faces and index in face_frames:
            sampled.append(frame)
    if first is None or last is None:
        raise MediaError(f"shot {shot.shot_id}: {shot.video} has no frames")
    descriptors = tuple(descriptor for frame in sampled if (descriptor := identity_of(frame)) is not None)
    return ShotAnalysis(
        shot_id=shot.shot_id,
        frames=len(luma),
        luma=np.asarray(luma),
        luma_std=np.asarray(luma_std),
        motion=np.asarray(motion),
        changed=np.asarray(changed),
        head=lab_stats(head_pixels),
        tail=lab_stats(tail_pixels),
        first_thumbnail=thumbnail(first),
        last_thumbnail=thumbnail(last),
        faces=descriptors,
        face_frames=tuple(face_frames) if faces else (),
    )


def identity_of(image: np.ndarray) -> np.ndarray | None:
    """The identity descriptor of the largest face in ``image``; None when no face is found."""
    upsample = 1 if image.shape[0] < MIN_FACE_DETECTION_HEIGHT else 0
    found = detect_faces(image, upsample=upsample)
    return face_descriptor(image, found[0]) if found else None


@cache
def reference_identity(path: Path) -> np.ndarray | None:
    """The identity of a reference portrait (cached: one portrait serves many shots)."""
    image = load_rgb(path)
    longest = max(image.shape[:2])
    if longest > 1024:
        scale = 1024 / longest
        resized = Image.fromarray(image).resize((round(image.shape[1] * scale), round(image.shape[0] * scale)))
        image = np.asarray(resized)
    return identity_of(image)


def lab_stats(frames: Sequence[np.ndarray]) -> LabStats:
    from skimage.color import rgb2lab

    lab = rgb2lab(np.concatenate([frame.reshape(-1, 3) for frame in frames])[None].astype(np.float64) / 255.0)[0]
    mean = lab.mean(axis=0)
    return LabStats((float(mean[0]), float(mean[1]), float(mean[2])), float(lab[:, 0].std()))


def thumbnail(frame: np.ndarray) -> bytes:
    image = Image.fromarray(frame)
    height = max(1, round(image.height * THUMB_WIDTH / image.width))
    buffer = io.BytesIO()
    image.resize((THUMB_WIDTH, height), Image.Resampling.BILINEAR).save(buffer, format="JPEG", quality=82)
    return buffer.getvalue()


def _luma(frame: np.ndarray) -> np.ndarray:
    return frame[..., 0] * 0.2126 + frame[..., 1] * 0.7152 + frame[..., 2] * 0.0722


def _reduce(frame: np.ndarray) -> np.ndarray:
    step = max(1, frame.shape[1] // ANALYSIS_WIDTH)
    return np.ascontiguousarray(frame[::step, ::step])
