"""Lip sync, measured: how far the mouth's movement and the speech's loudness are apart in time.

Three parts, each a plain function on arrays:

- ``mouth_openings``: per frame, the gap between the inner lips from dlib's 68 face landmarks (the
  detector farm already ships, farm.media.faces), divided by the inter-ocular distance so it does not
  depend on how large the face is in frame. The face is detected on a few frames only (HOG detection is
  the expensive part) and the landmark predictor, which is cheap, runs on that box in every frame.
- ``speech_envelope``: per video frame, the RMS of the samples inside that frame's time span, in dB
  (floored at ``ENVELOPE_FLOOR_DB``): a mouth opens with loudness roughly logarithmically, and dB keeps
  one loud syllable from dominating the correlation.
- ``best_lag``: the normalised (Pearson) cross-correlation of the two curves at every lag within
  ``MAX_SEARCH_SECONDS``; the lag with the highest correlation is the offset.

Sign: a positive lag means the sound is late (it comes ``lag`` frames after the mouth that makes it);
negative means the sound leads.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from fractions import Fraction

import numpy as np

from farm.media.faces import Face, _detector, _landmark_predictor

MAX_SEARCH_SECONDS = 0.4
"""Lags are searched within this much either way: far beyond what a viewer tolerates, short of a word."""
ENVELOPE_FLOOR_DB = -60.0
"""Quieter frames count as this loud (dBFS): below room tone, so silence is one flat level."""
SILENT_ENVELOPE_DB = 12.0
"""An envelope that varies by less than this (dB, max - min) carries no speech to sync with."""
STILL_MOUTH = 0.02
"""A mouth whose opening varies by less than this (inter-ocular distances, max - min) does not move."""
REDETECT_FRAMES = 25
"""The face box is searched for again this often, so a camera move or head sway keeps it on the face."""
DETECTION_HEIGHT = 400
"""Frames lower than this are upsampled 2x for detection (dlib's HOG needs faces of ~80 px)."""
INNER_LIP_PAIRS = ((61, 67), (62, 66), (63, 65))
"""iBUG-300W inner-lip points: upper lip (61-63) over lower lip (67-65)."""


@dataclass(frozen=True)
class SyncMeasure:
    lag_frames: int
    """Positive: the sound is late; negative: it leads."""
    correlation: float
    """Pearson correlation of the two curves at ``lag_frames`` (0 when either curve is flat)."""
    overlap: int
    """How many frames the correlation was taken over."""


def mouth_opening(face: Face) -> float:
    """Inner-lip gap of one face, in inter-ocular distances (0 closed, ~0.3 wide open)."""
    marks = face.landmarks
    gap = float(np.mean([marks[lower, 1] - marks[upper, 1] for upper, lower in INNER_LIP_PAIRS]))
    eyes = float(np.linalg.norm(marks[36:42].mean(axis=0) - marks[42:48].mean(axis=0)))
    return max(gap, 0.0) / max(eyes, 1.0)


def mouth_openings(frames: Iterable[np.ndarray]) -> np.ndarray:
    """Per-frame mouth opening of the largest face; NaN in frames before any face was found.

    The box of the last detection is reused until the next one (every ``REDETECT_FRAMES`` frames, and
    on every frame while none has been found), so the cost is one landmark fit per frame.
    """
    openings: list[float] = []
    box = None
    for index, frame in enumerate(frames):
        pixels = np.ascontiguousarray(frame)
        if box is None or index % REDETECT_FRAMES == 0:
            found = _largest_box(pixels)
            box = found if found is not None else box
        if box is None:
            openings.append(math.nan)
            continue
        shape = _landmark_predictor()(pixels, box)
        points = np.array([(shape.part(i).x, shape.part(i).y) for i in range(68)], dtype=np.float64)
        openings.append(mouth_opening(Face(box.left(), box.top(), box.right(), box.bottom(), points)))
    return np.asarray(openings, dtype=np.float64)


def _largest_box(pixels: np.ndarray) -> object | None:
    upsample = 1 if pixels.shape[0] < DETECTION_HEIGHT else 0
    boxes = list(_detector()(pixels, upsample))
    return max(boxes, key=lambda box: box.area()) if boxes else None


def speech_envelope(audio: np.ndarray, sample_rate: int, fps: Fraction, frames: int) -> np.ndarray:
    """dB RMS of the samples in each video frame's span (int16 or float in [-1, 1]); missing samples are silence."""
    samples = audio.astype(np.float64) / (32768.0 if audio.dtype == np.int16 else 1.0)
    index = np.arange(frames + 1, dtype=np.int64)
    edges = -((-index * sample_rate * fps.denominator) // fps.numerator)
    present = np.minimum(edges, len(samples))
    energy = np.concatenate([[0.0], np.cumsum(np.square(samples))])
    summed = np.maximum(energy[present[1:]] - energy[present[:-1]], 0.0)
    rms = np.sqrt(summed / np.maximum(np.diff(edges), 1))
    return np.maximum(20.0 * np.log10(np.maximum(rms, 1e-12)), ENVELOPE_FLOOR_DB)


def is_silent(envelope: np.ndarray) -> bool:
    return len(envelope) == 0 or float(np.ptp(envelope)) < SILENT_ENVELOPE_DB


def is_still(mouth: np.ndarray) -> bool:
    known = mouth[~np.isnan(mouth)]
    return len(known) == 0 or float(np.ptp(known)) < STILL_MOUTH


def max_lag_frames(fps: Fraction, seconds: float = MAX_SEARCH_SECONDS) -> int:
    return max(1, round(seconds * float(fps)))


def best_lag(mouth: np.ndarray, envelope: np.ndarray, max_lag: int) -> SyncMeasure:
    """The lag in ``[-max_lag, max_lag]`` at which ``envelope`` best follows ``mouth``.

    At lag L, mouth frame t is paired with envelope frame t + L (sound late by L frames). Each lag is
    scored by the Pearson correlation over the frames both curves cover; NaN mouth frames (no face) are
    left out. Lags whose overlap is under half the shot are not considered, so a short edge never wins.
    """
    scores = correlations(mouth, envelope, max_lag)
    best = max(scores, key=lambda item: (item[1], -abs(item[0])), default=(0, 0.0, 0))
    return SyncMeasure(lag_frames=best[0], correlation=best[1], overlap=best[2])


def correlations(mouth: np.ndarray, envelope: np.ndarray, max_lag: int) -> list[tuple[int, float, int]]:
    """(lag, correlation, overlap) for every lag that overlaps at least half the shorter curve."""
    count = min(len(mouth), len(envelope))
    needed = max(3, count // 2)
    scores = []
    for lag in range(-max_lag, max_lag + 1):
        first = max(0, -lag)
        end = min(count, count - lag)
        if end - first < needed:
            continue
        picture = mouth[first:end]
        sound = envelope[first + lag : end + lag]
        known = ~np.isnan(picture)
        if int(known.sum()) < needed:
            continue
        scores.append((lag, pearson(picture[known], sound[known]), int(known.sum())))
    return scores


def pearson(first: np.ndarray, second: np.ndarray) -> float:
    """Correlation of two equal-length curves; 0 when either is flat (nothing to line up)."""
    a = first - first.mean()
    b = second - second.mean()
    norm = math.sqrt(float(np.dot(a, a)) * float(np.dot(b, b)))
    return float(np.dot(a, b) / norm) if norm > 1e-12 else 0.0
