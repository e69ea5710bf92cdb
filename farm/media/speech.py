"""Where a long stretch of dialogue can be cut: at its speech pauses.

A take longer than a model's window is rendered in segments; a cut inside a word shows (the mouth
jumps at the seam), a cut in a pause does not. ``pause_cuts`` finds, for each segment in turn, the
quietest pause whose middle lies between ``min_samples`` and ``max_samples`` past the segment's start,
and cuts there; with no pause in that span it cuts hard at ``max_samples``. Only the span a cut may fall
in is searched, so planning a 30-minute monologue stays a fraction of a second per segment.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np

with warnings.catch_warnings():
    # pydub warns at import when no ffmpeg is on PATH (farm hands it raw samples and never lets it
    # decode), and Python 3.12 warns that its audioop is deprecated (audioop-lts replaces it from 3.13).
    warnings.simplefilter("ignore", RuntimeWarning)
    warnings.simplefilter("ignore", DeprecationWarning)
    from pydub import AudioSegment
    from pydub.silence import detect_silence

MIN_PAUSE_SECONDS = 0.2
"""A gap shorter than this is between syllables, not a pause."""
PAUSE_BELOW_DB = 16.0
"""A pause is this much quieter than the whole stretch's average loudness."""
_CHUNK = 1 << 20
SEEK_SECONDS = 0.01
"""The step at which pauses are searched for: a cut is placed to this precision."""


@dataclass(frozen=True)
class Pause:
    start: int
    end: int
    """Samples, half-open, relative to the whole stretch."""
    level_db: float
    """Its loudness (dBFS RMS); the quietest pause is the best cut."""

    @property
    def middle(self) -> int:
        return (self.start + self.end) // 2


def pause_cuts(samples: np.ndarray, sample_rate: int, min_samples: int, max_samples: int) -> tuple[int, ...]:
    """Cut positions (samples, increasing, inside the stretch) that split ``samples`` into pieces of at most
    ``max_samples``, each (but the last) at least ``min_samples`` long, at speech pauses where there are any.

    Deterministic: the same samples always give the same cuts (ties go to the earliest pause). A stretch
    no longer than ``max_samples`` is not cut.
    """
    if not 0 < min_samples <= max_samples:
        raise ValueError(f"segment bounds must satisfy 0 < min <= max, not {min_samples}, {max_samples}")
    samples = np.asarray(samples)
    total = len(samples)
    threshold = _loudness_db(samples) - PAUSE_BELOW_DB
    cuts: list[int] = []
    start = 0
    while total - start > max_samples:
        low, high = start + min_samples, start + max_samples
        pause = quietest_pause(samples, sample_rate, low, high, threshold)
        cut = pause.middle if pause is not None else high
        cuts.append(cut)
        start = cut
    return tuple(cuts)


def quietest_pause(samples: np.ndarray, sample_rate: int, low: int, high: int, threshold_db: float) -> Pause | None:
    """The quietest pause whose middle lies in ``[low, high]`` (samples), or None when there is none."""
    reach = round(MIN_PAUSE_SECONDS * sample_rate)
    first, last = max(0, low - reach), min(len(samples), high + reach)
    window = samples[first:last]
    if len(window) == 0:
        return None
    segment = _segment(window, sample_rate)
    found = detect_silence(
        segment,
        min_silence_len=round(MIN_PAUSE_SECONDS * 1000),
        silence_thresh=threshold_db,
        seek_step=max(1, round(SEEK_SECONDS * 1000)),
    )
    best: Pause | None = None
    for begin_ms, end_ms in found:
        begin = first + begin_ms * sample_rate // 1000
        end = min(last, first + end_ms * sample_rate // 1000)
        pause = Pause(begin, end, _loudness_db(samples[begin:end]))
        if low <= pause.middle <= high and (best is None or pause.level_db < best.level_db):
            best = pause
    return best


def _segment(samples: np.ndarray, sample_rate: int) -> AudioSegment:
    pcm = np.asarray(samples)
    if pcm.dtype != np.int16:
        pcm = np.clip(np.round(pcm.astype(np.float64) * 32767.0), -32768, 32767).astype(np.int16)
    return AudioSegment(pcm.astype("<i2", copy=False).tobytes(), sample_width=2, frame_rate=sample_rate, channels=1)


def _loudness_db(samples: np.ndarray) -> float:
    """dBFS RMS of int16 (or [-1, 1] float) samples; digital silence is -inf."""
    if len(samples) == 0:
        return float("-inf")
    scale = 32768.0 if samples.dtype == np.int16 else 1.0
    energy = sum(  # in chunks: squaring 30 minutes at once would be a 230 MB temporary
        float(np.square(samples[at : at + _CHUNK], dtype=np.float64).sum()) for at in range(0, len(samples), _CHUNK)
    )
    rms = (energy / len(samples)) ** 0.5 / scale
    return 20.0 * np.log10(rms) if rms > 0 else float("-inf")
