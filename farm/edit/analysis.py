"""One decoding pass per shot that measures what the picture checks need, and keeps nothing else.

Per frame it keeps two numbers (mean luma and the mean absolute difference to the previous frame), plus
the Lab statistics of the first and last half second, two small JPEG thumbnails and the faces of three
sampled frames. A 1,000-shot edit therefore needs a few megabytes, never its frames.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
from PIL import Image

from farm.edit.timeline import EditShot, SpeakerRegion
from farm.errors import MediaError
from farm.media.faces import image_identity
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


@dataclass(frozen=True)
class LabStats:
    mean: tuple[float, float, float]
    """Mean L*, a*, b* (CIE Lab, D65)."""
    lightness_std: float
    """Standard deviation of L* over the pixels: the exposure's contrast."""


@dataclass(frozen=True)
class SeamAnalysis:
    """The two sides of one seam inside a shot: where one segment of a long take meets the next."""

    frame: int
    """The first frame of the later segment (within the shot)."""
    before: LabStats
    after: LabStats
    """Over EDGE_SECONDS (at most the segment) each side."""
    face_before: np.ndarray | None = field(repr=False, default=None)
    face_after: np.ndarray | None = field(repr=False, default=None)
    """Identity descriptors of the last frame before and the first frame after; None when no face was
    found there (or faces were not asked for)."""


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
    speaker_faces: dict[str, tuple[np.ndarray, ...]] = field(repr=False, default_factory=dict)
    """A two-shot's descriptors per speaker (character id): the largest face inside that speaker's region
    of each sampled frame, so each person is checked on their own face."""
    seams: tuple[SeamAnalysis, ...] = ()
    """Either side of each seam of a long take (``EditShot.seams``), in order."""

    @property
    def identity(self) -> np.ndarray | None:
        """The shot's identity: the mean descriptor of its sampled faces; None when none was found."""
        return np.mean(self.faces, axis=0) if self.faces else None

    def identity_of(self, character_id: str) -> np.ndarray | None:
        """A two-shot speaker's identity from their own region; None when no face was found there."""
        faces = self.speaker_faces.get(character_id, ())
        return np.mean(faces, axis=0) if faces else None


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
    seams = _SeamCollector(shot.seams, edge, faces)
    for index, frame in enumerate(read_frames(shot.video)):
        seams.see(index, frame)
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
    descriptors = tuple(descriptor for frame in sampled if (descriptor := image_identity(frame)) is not None)
    speaker_faces = {speaker.character_id: _region_faces(sampled, speaker) for speaker in shot.speakers}
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
        speaker_faces=speaker_faces,
        seams=seams.result(),
    )


def _region_faces(frames: Sequence[np.ndarray], speaker: SpeakerRegion) -> tuple[np.ndarray, ...]:
    """The identity descriptors found inside ``speaker``'s region of each sampled frame."""
    found = []
    for frame in frames:
        left, top, right, bottom = speaker.pixel_box(frame.shape[1], frame.shape[0])
        descriptor = image_identity(np.ascontiguousarray(frame[top:bottom, left:right]))
        if descriptor is not None:
            found.append(descriptor)
    return tuple(found)


class _SeamCollector:
    """Keeps, during the one decoding pass, only the reduced frames either side of each seam (and the two
    frames touching it when faces are wanted), so a 30-minute take's seams cost kilobytes."""

    def __init__(self, seams: Sequence[int], edge: int, faces: bool) -> None:
        self.seams = tuple(seams)
        self.edge = edge
        self.faces = faces
        self.sides: dict[int, tuple[list[np.ndarray], list[np.ndarray]]] = {seam: ([], []) for seam in self.seams}
        self.touching: dict[int, np.ndarray] = {}
        bounds = (0, *self.seams, 1 << 62)
        self.windows = {
            seam: (max(bounds[i], seam - edge), min(bounds[i + 2], seam + edge)) for i, seam in enumerate(self.seams)
        }

    def see(self, index: int, frame: np.ndarray) -> None:
        for seam, (low, high) in self.windows.items():
            if low <= index < high:
                self.sides[seam][0 if index < seam else 1].append(_reduce(frame))
                if self.faces and index in (seam - 1, seam):
                    self.touching[index] = frame

    def result(self) -> tuple[SeamAnalysis, ...]:
        found = []
        for seam in self.seams:
            before, after = self.sides[seam]
            if not before or not after:
                continue  # a seam past the video's end: the frame-count check reports the short video
            found.append(
                SeamAnalysis(
                    frame=seam,
                    before=lab_stats(before),
                    after=lab_stats(after),
                    face_before=_face(self.touching.get(seam - 1)),
                    face_after=_face(self.touching.get(seam)),
                )
            )
        return tuple(found)


def _face(frame: np.ndarray | None) -> np.ndarray | None:
    return None if frame is None else image_identity(frame)


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
