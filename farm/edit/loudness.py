"""Loudness per ITU-R BS.1770-4 / EBU R128: streaming meters for the shots and the laid edit, ffmpeg's ebur128
for the delivered file.

The streaming meters K-weight samples chunk by chunk (scipy's sosfilt, filter state carried across
chunks) and keep one mean square per 100 ms: memory grows by one float per 100 ms of audio, never with
the samples, so a one-hour edit is measured in a few kilobytes. The gated blocks are the standard's
400 ms windows with 75 % overlap, built from four consecutive 100 ms sub-blocks. The K-weighting
coefficients come from pyloudnorm, whose whole-array meter they agree with (tests check within 0.1 LU).

``EditLoudnessMeter`` measures the laid edit before normalisation (integrated loudness, loudness range,
true peak) in the same pass that lays it, as ebur128 would on what the listener gets: the mono
dialogue duplicated to stereo, which reads 3 LU louder than the mono signal because BS.1770 sums the
channels. It agrees with ebur128 within 0.15 LU and 0.1 dB (ebur128 prints one decimal and gates on a
histogram; tests/test_edit_assembly.py and bench/assembly.py compare them). The delivered file is
measured by ffmpeg's ebur128 (``measure_loudness``): its normalised, encoded audio.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

import numpy as np

from farm.errors import MediaError
from farm.media.ffmpeg import DUPLICATE_MONO_TO_STEREO, Filter, measure_ebur128, run

ABSOLUTE_GATE_LUFS = -70.0
RELATIVE_GATE_LU = -10.0
SUB_BLOCK_SECONDS = 0.1
BLOCK_SUB_BLOCKS = 4
SHORT_TERM_SUB_BLOCKS = 30
"""EBU Tech 3342: loudness range is taken over 3 s short-term blocks, one every 100 ms."""
RANGE_RELATIVE_GATE_LU = -20.0
RANGE_PERCENTILES = (10.0, 95.0)
DUAL_MONO_POWER = 2.0
"""The mono dialogue plays on both channels: BS.1770 sums the channels' powers."""
TRUE_PEAK_OVERSAMPLING = 4
TRUE_PEAK_HALF_TAPS = 6
"""The interpolation filter spans this many input samples either side (a Kaiser-windowed sinc of
2 * 6 * 4 + 1 taps, as in scipy's resample_poly design but shorter, like BS.1770's own 48-tap example:
its largest phase gain is 1.92, where resample_poly's 81 taps have 2.24, so fewer stretches need
oversampling (see ``_true_peak``) and each costs 40 % less)."""
TRUE_PEAK_RUN_STRETCHES = 50
"""At most this many consecutive 100 ms stretches (5 s) are read and oversampled at once: flat memory."""
DENORMAL_GUARD = 1e-100
"""The amplitude of the dither that keeps the K-weighting filters out of subnormal numbers."""
TRUE_PEAK_MARGIN_SAMPLES = 48
"""Samples read either side of a stretch so that the interpolation filter sees its neighbours."""


class WeightedLoudness:
    """Integrated loudness of one mono channel fed already K-weighted samples in chunks.

    Assembly K-weights the whole edit once (``EditLoudnessMeter``) and hands each shot its stretch of
    the weighted signal: the filters then carry the previous shot's last milliseconds into a shot's
    first, as the cut is heard, and no sample is filtered twice.
    """

    def __init__(self, sample_rate: int) -> None:
        self._sub_block = round(sample_rate * SUB_BLOCK_SECONDS)
        self._pending = np.zeros(0)
        self._sub_block_powers: list[float] = []

    def feed_weighted(self, weighted: np.ndarray) -> None:
        pending = np.concatenate([self._pending, weighted])
        whole = len(pending) // self._sub_block * self._sub_block
        if whole:
            self._sub_block_powers.extend(np.mean(np.square(pending[:whole].reshape(-1, self._sub_block)), axis=1))
        self._pending = pending[whole:]

    def integrated(self) -> float | None:
        """Gated integrated loudness; None under 400 ms or when every block is below -70 LUFS."""
        return _gated_loudness(np.asarray(self._sub_block_powers))


class LoudnessMeter(WeightedLoudness):
    """Integrated loudness (LUFS) of one mono channel fed in chunks of float samples in [-1, 1]."""

    def __init__(self, sample_rate: int) -> None:
        super().__init__(sample_rate)
        self._sos = k_weighting(sample_rate)
        self._state = np.zeros((len(self._sos), 2))

    def feed(self, samples: np.ndarray) -> None:
        weighted, self._state = k_weighted(self._sos, np.asarray(samples, dtype=np.float64), self._state)
        self.feed_weighted(weighted)


def k_weighting(sample_rate: int) -> np.ndarray:
    """BS.1770's K-weighting (high shelf, then high pass) as second-order sections for scipy's sosfilt."""
    # scipy.signal takes seconds to import: only a meter that measures pays for it, not every
    # process that imports the edit library (a cached re-run re-uses its edit and measures nothing)
    from pyloudnorm.iirfilter import IIRfilter

    shelf = IIRfilter(4.0, 1 / math.sqrt(2), 1500.0, sample_rate, "high_shelf")
    high_pass = IIRfilter(0.0, 0.5, 38.0, sample_rate, "high_pass")
    return np.array([np.r_[shelf.b, shelf.a], np.r_[high_pass.b, high_pass.a]])


def k_weighted(sos: np.ndarray, values: np.ndarray, state: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``values`` (samples along the last axis) through the K-weighting ``sos``, from and to ``state``.

    Dialogue has stretches of digital silence, in which the filters' state decays into subnormal floats
    that the CPU computes with some ten times slower (the whole meter ran 3-8x slower on real dialogue
    than on noise). A Nyquist-rate dither of DENORMAL_GUARD keeps the state normal; it adds 1e-200 to the
    power, nothing a double can hold next to any audible signal.
    """
    from scipy.signal import sosfilt

    dithered = np.array(values, dtype=np.float64)
    dithered[..., ::2] += DENORMAL_GUARD
    dithered[..., 1::2] -= DENORMAL_GUARD
    return sosfilt(sos, dithered, axis=-1, zi=state)


@dataclass(frozen=True)
class LoudnessMeasurement:
    integrated_lufs: float | None
    """None when the audio is silent or shorter than one 400 ms gating block."""
    true_peak_dbtp: float | None
    loudness_range_lu: float | None


class EditLoudnessMeter:
    """The whole edit's loudness as ebur128 measures it on the dual-mono stereo, fed its mono samples in order.

    K-weighting runs as one second-order-sections filter over the whole edit (state carried across
    chunks); one mean square and one sample peak per 100 ms are kept, so that ``measure`` can oversample
    only the loud stretches for the true peak (reading them back from the laid WAV): memory grows by two
    floats per 100 ms of audio, never with the samples.
    """

    def __init__(self, sample_rate: int) -> None:
        self._sos = k_weighting(sample_rate)
        self._state = np.zeros((len(self._sos), 2))
        self._sub_block = round(sample_rate * SUB_BLOCK_SECONDS)
        self._pending = np.zeros(0)
        self._powers: list[np.ndarray] = []
        self._position = 0
        self._peaks: list[np.ndarray] = []
        """The sample peak of every 100 ms of the edit (the last one short)."""

    def feed(self, samples: np.ndarray) -> np.ndarray:
        """Meter the next samples of the edit; returns them K-weighted (for the shot's own meter)."""
        values = np.asarray(samples, dtype=np.float64)
        if not len(values):
            return values
        weighted, self._state = k_weighted(self._sos, values, self._state)
        pending = np.concatenate([self._pending, weighted])
        whole = len(pending) // self._sub_block * self._sub_block
        if whole:
            self._powers.append(np.mean(np.square(pending[:whole].reshape(-1, self._sub_block)), axis=1))
        self._pending = pending[whole:]
        # peaks on the edit's 100 ms grid, so every stretch is one 100 ms of the edit whatever the chunks
        edges = np.arange(-(self._position % self._sub_block), len(values), self._sub_block)
        edges[0] = 0
        peaks = np.maximum.reduceat(np.abs(values), edges)
        if self._position % self._sub_block and self._peaks:
            self._peaks[-1][-1] = max(self._peaks[-1][-1], peaks[0])
            peaks = peaks[1:]
        if len(peaks):
            self._peaks.append(peaks)
        self._position += len(values)
        return weighted

    def measure(self, read: Callable[[int, int], np.ndarray]) -> LoudnessMeasurement:
        """Integrated loudness, loudness range and true peak; ``read(first, count)`` returns laid samples."""
        powers = DUAL_MONO_POWER * (np.concatenate(self._powers) if self._powers else np.zeros(0))
        return LoudnessMeasurement(_gated_loudness(powers), self._true_peak(read), _loudness_range(powers))

    def _true_peak(self, read: Callable[[int, int], np.ndarray]) -> float | None:
        """The 4x-oversampled peak, computed only where it can be the edit's.

        An interpolated sample is a weighted sum of at most 2 * TRUE_PEAK_HALF_TAPS input samples, so it
        is at most ``bound`` (the largest sum of one phase's absolute weights) times their peak; a
        stretch whose own and neighbours' sample peaks, times ``bound``, stay under the edit's loudest
        sample peak cannot hold the true peak, which is never below that. The others are read back and
        oversampled, up to 5 s of consecutive ones at a time: the result is exact, not an estimate.
        """
        from scipy.signal import upfirdn

        peaks = np.concatenate(self._peaks) if self._peaks else np.zeros(0)
        if not len(peaks) or float(np.max(peaks)) <= 0.0:
            return None
        taps = _interpolation_taps()
        bound = max(
            float(np.sum(np.abs(taps[phase::TRUE_PEAK_OVERSAMPLING]))) for phase in range(TRUE_PEAK_OVERSAMPLING)
        )
        loudest = float(np.max(peaks))
        neighbourhood = np.maximum(peaks, np.maximum(np.r_[0.0, peaks[:-1]], np.r_[peaks[1:], 0.0]))
        loud = np.flatnonzero(neighbourhood * bound >= loudest)
        true_peak = loudest
        breaks = np.flatnonzero(np.diff(loud) > 1) + 1
        runs = (
            run[start : start + TRUE_PEAK_RUN_STRETCHES]
            for run in np.split(loud, breaks)
            for start in range(0, len(run), TRUE_PEAK_RUN_STRETCHES)
        )
        for stretch in runs:
            first = max(0, int(stretch[0]) * self._sub_block - TRUE_PEAK_MARGIN_SAMPLES)
            values = read(first, len(stretch) * self._sub_block + 2 * TRUE_PEAK_MARGIN_SAMPLES)
            true_peak = max(true_peak, float(np.max(np.abs(upfirdn(taps, values, TRUE_PEAK_OVERSAMPLING)))))
        return 20 * math.log10(true_peak)


@dataclass(frozen=True)
class StretchLoudness:
    """What ``StretchMeter`` measured of one stretch of a longer signal, to be combined with its neighbours'."""

    first_sub_block: int
    """Index, on the whole signal's 100 ms grid, of the sub-block ``energies`` starts at."""
    energies: np.ndarray = field(repr=False)
    """Sums of the squared K-weighted samples (channels summed) per 100 ms sub-block; the first and last
    are partial where the stretch starts or ends inside a sub-block, and a neighbour holds the rest."""
    true_peak: float
    """The largest 4x-oversampled sample of the stretch, linear full scale (0.0 when silent)."""


class StretchMeter:
    """Loudness of the samples ``[first, end)`` of a long multichannel signal, fed its samples in order from
    any earlier one, so that several stretches are metered at once and combined (``combine_stretches``).

    The edit's encoded audio is metered this way, each AAC piece by the thread that encoded it, from its
    decoded pre-roll on: K-weighting settles within milliseconds, so after a second of the preceding
    signal the filter state is the one a single pass over the whole signal would carry (to rounding).
    The true peak is exact for the stretch: a 100 ms stretch is oversampled unless its sample peak times
    the interpolation filter's largest gain stays under the loudest sample met so far, and a channel equal
    to the first over a stretch (dual mono) is not oversampled twice.
    """

    def __init__(self, sample_rate: int, channels: int, first: int, end: int, fed_from: int) -> None:
        self._sos = k_weighting(sample_rate)
        self._state = np.zeros((len(self._sos), channels, 2))
        self._sub_block = round(sample_rate * SUB_BLOCK_SECONDS)
        self._first, self._end = first, end
        self._first_sub_block = first // self._sub_block
        self._energies = np.zeros(-(-end // self._sub_block) - self._first_sub_block)
        self._position = fed_from
        self._history = np.zeros((channels, _interpolation_span() - 1))
        """The samples before the next block, which the interpolation at its first samples reads."""
        self._loudest = 0.0

    def feed(self, block: np.ndarray) -> None:
        """The next samples, shape (channels, samples), floats in [-1, 1]."""
        values = np.asarray(block, dtype=np.float64)
        weighted, self._state = k_weighted(self._sos, values, self._state)
        start, stop = self._position, self._position + values.shape[1]
        kept_from, kept_to = max(start, self._first), min(stop, self._end)
        if kept_from < kept_to:
            energy = np.sum(np.square(weighted[:, kept_from - start : kept_to - start]), axis=0)
            grid = np.arange(kept_from, kept_to) // self._sub_block - self._first_sub_block
            self._energies += np.bincount(grid, weights=energy, minlength=len(self._energies))
            extended = np.concatenate([self._history, values], axis=1)
            self._oversample(extended, kept_from - start, kept_to - start)
        span = self._history.shape[1]
        self._history = np.concatenate([self._history, values], axis=1)[:, -span:]
        self._position = stop

    def _oversample(self, extended: np.ndarray, kept_from: int, kept_to: int) -> None:
        """Raise the loudest sample to the true peak of ``extended``'s samples ``[kept_from, kept_to)``
        (indices past the history in front of them)."""
        from scipy.signal import upfirdn

        span = self._history.shape[1]
        kept = np.abs(extended[:, span + kept_from : span + kept_to])
        self._loudest = max(self._loudest, float(np.max(kept)))
        taps, bound = _interpolation_taps(), _interpolation_bound()
        for first in range(kept_from, kept_to, self._sub_block):
            last = min(first + self._sub_block, kept_to)
            stretch = extended[:, first : last + span]  # the samples the outputs at [first, last) are made of
            if float(np.max(np.abs(stretch))) * bound < self._loudest:
                continue
            for channel, samples in enumerate(stretch):
                if channel and np.array_equal(samples, stretch[0]):
                    continue
                interpolated = upfirdn(taps, samples, TRUE_PEAK_OVERSAMPLING)[
                    TRUE_PEAK_OVERSAMPLING * span : TRUE_PEAK_OVERSAMPLING * len(samples)
                ]
                self._loudest = max(self._loudest, float(np.max(np.abs(interpolated))))

    def result(self) -> StretchLoudness:
        return StretchLoudness(self._first_sub_block, self._energies, self._loudest)


def combine_stretches(
    stretches: Sequence[StretchLoudness], sample_rate: int, total_samples: int
) -> LoudnessMeasurement:
    """The loudness of a signal metered in stretches that tile it (``StretchMeter``): the partial
    sub-blocks either side of every boundary are added up, the signal's last partial one is left out (as
    ``EditLoudnessMeter`` leaves it), and the powers gated as one."""
    sub_block = round(sample_rate * SUB_BLOCK_SECONDS)
    energies = np.zeros(-(-total_samples // sub_block))
    for stretch in stretches:
        energies[stretch.first_sub_block : stretch.first_sub_block + len(stretch.energies)] += stretch.energies
    powers = energies[: total_samples // sub_block] / sub_block
    loudest = max((stretch.true_peak for stretch in stretches), default=0.0)
    return LoudnessMeasurement(
        _gated_loudness(powers), 20 * math.log10(loudest) if loudest > 0.0 else None, _loudness_range(powers)
    )


@cache
def _interpolation_span() -> int:
    """Input samples one oversampled output is made of (the longest polyphase branch)."""
    return -(-len(_interpolation_taps()) // TRUE_PEAK_OVERSAMPLING)


@cache
def _interpolation_bound() -> float:
    """The largest sum of one phase's absolute weights: no interpolated sample exceeds this times the
    sample peak of the inputs it is made of."""
    taps = _interpolation_taps()
    return max(float(np.sum(np.abs(taps[phase::TRUE_PEAK_OVERSAMPLING]))) for phase in range(TRUE_PEAK_OVERSAMPLING))


@cache
def _interpolation_taps() -> np.ndarray:
    """The 4x interpolation filter, designed once (resample_poly would design it on every call)."""
    from scipy.signal import firwin

    length = 2 * TRUE_PEAK_HALF_TAPS * TRUE_PEAK_OVERSAMPLING + 1
    return TRUE_PEAK_OVERSAMPLING * firwin(length, 1.0 / TRUE_PEAK_OVERSAMPLING, window=("kaiser", 5.0))


def _gated_blocks(
    powers: np.ndarray, sub_blocks: int, relative_gate_lu: float, *, strict: bool
) -> tuple[np.ndarray, np.ndarray] | None:
    """The power and level of every block of ``sub_blocks`` 100 ms sub-block powers that passes the absolute
    gate and then the relative one (``relative_gate_lu`` under the mean power of those above the absolute
    gate; ``strict``: a level on the relative gate fails, as BS.1770 has it); None when none can be gated."""
    if len(powers) < sub_blocks:
        return None
    blocks = np.convolve(powers, np.ones(sub_blocks) / sub_blocks, mode="valid")
    with np.errstate(divide="ignore"):
        levels = -0.691 + 10.0 * np.log10(blocks)
    above_absolute = blocks[levels >= ABSOLUTE_GATE_LUFS]
    if not len(above_absolute):
        return None
    relative_gate = -0.691 + 10.0 * math.log10(float(np.mean(above_absolute))) + relative_gate_lu
    relative = levels > relative_gate if strict else levels >= relative_gate
    kept = (levels >= ABSOLUTE_GATE_LUFS) & relative
    return blocks[kept], levels[kept]


def _gated_loudness(powers: np.ndarray) -> float | None:
    """BS.1770 integrated loudness of 100 ms sub-block powers (channels summed), None below the gates."""
    gated = _gated_blocks(powers, BLOCK_SUB_BLOCKS, RELATIVE_GATE_LU, strict=True)
    if gated is None or not len(gated[0]):
        return None
    return -0.691 + 10.0 * math.log10(float(np.mean(gated[0])))


def _loudness_range(powers: np.ndarray) -> float | None:
    """EBU Tech 3342 loudness range (LU) of 100 ms sub-block powers: 3 s blocks, gated, 10th to 95th percentile."""
    gated = _gated_blocks(powers, SHORT_TERM_SUB_BLOCKS, RANGE_RELATIVE_GATE_LU, strict=False)
    if gated is None:
        return None
    low, high = np.percentile(gated[1], RANGE_PERCENTILES)
    return float(high - low)


def measure_loudness(path: Path, *, duplicate_mono_to_stereo: bool = True) -> LoudnessMeasurement:
    """ffmpeg ebur128 over the first audio stream of ``path``, streamed (flat memory)."""
    filters = [DUPLICATE_MONO_TO_STEREO] if duplicate_mono_to_stereo else []
    log = run(measure_ebur128(path, filters=filters), f"{path}: measuring loudness").log
    return _parse_ebur128_summary(path, log)


@dataclass(frozen=True)
class LoudnessPoint:
    seconds: float
    momentary: float | None
    """Loudness over the last 400 ms (LUFS); None below the meter's floor (silence)."""
    short_term: float | None
    """Over the last 3 s."""


def loudness_curve(path: Path, *, every_seconds: float = 0.5) -> tuple[LoudnessPoint, ...]:
    """Momentary and short-term loudness through ``path``'s first audio stream, a point every
    ``every_seconds`` (ffmpeg ebur128's 100 ms blocks, thinned): the edit's loudness plot."""
    log = run(measure_ebur128(path, filters=[DUPLICATE_MONO_TO_STEREO], per_block=True), f"{path}: loudness curve").log
    points: list[LoudnessPoint] = []
    for found in _BLOCK.finditer(log):
        seconds = float(found.group(1))
        if points and seconds < points[-1].seconds + every_seconds - 1e-6:
            continue
        points.append(LoudnessPoint(seconds, _audible(found.group(2)), _audible(found.group(3))))
    return tuple(points)


_BLOCK = re.compile(r"t:\s*([\d.]+)\s+TARGET:.*?M:\s*(-?[\d.]+|-?inf|nan)\s+S:\s*(-?[\d.]+|-?inf|nan)")


def _audible(text: str) -> float | None:
    value = _finite(text) if text != "nan" else None
    return value if value is not None and value > ABSOLUTE_GATE_LUFS else None


def _parse_ebur128_summary(path: Path, text: str) -> LoudnessMeasurement:
    summary = text[text.rfind("Summary:") :]
    integrated = re.search(r"I:\s+(-?[\d.]+|-inf) LUFS", summary)
    peak = re.search(r"Peak:\s+(-?[\d.]+|-inf) dBFS", summary)
    lra = re.search(r"LRA:\s+(-?[\d.]+) LU", summary)
    if "Summary:" not in text or integrated is None:
        raise MediaError(f"{path}: ffmpeg printed no loudness summary")
    loudness = _finite(integrated.group(1))
    if loudness is not None and loudness <= ABSOLUTE_GATE_LUFS:
        loudness = None  # ebur128 reports -70 for silence and for clips under one gating block
    return LoudnessMeasurement(
        loudness, _finite(peak.group(1)) if peak else None, _finite(lra.group(1)) if lra else None
    )


def _finite(text: str) -> float | None:
    value = float(text)
    return value if math.isfinite(value) else None


LIMITER_MARGIN_DB = 1.0
"""The limiter works on sample peaks; inter-sample (true) peaks can rise above them by a fraction of a
dB, so it aims this far under the true-peak ceiling."""


@dataclass(frozen=True)
class Normalisation:
    """The gain that brings the edit to the loudness target, and the peak limiter that keeps it legal."""

    gain_db: float
    peak_limited: bool
    """True when the gain alone would push the true peak over its ceiling: a look-ahead limiter then
    holds the peaks down (speech with a few loud plosives), so the edit still reaches its target."""
    limit_db: float | None = None
    """The limiter's sample-peak ceiling in dBFS, when ``peak_limited``."""

    def audio_filters(self) -> tuple[Filter, ...]:
        """The ffmpeg filters that apply this normalisation (the limiter is delay-compensated: sync is kept)."""
        gain = Filter.of("volume", f"{self.gain_db:.4f}dB")
        if not (self.peak_limited and self.limit_db is not None):
            return (gain,)
        limit = 10 ** (self.limit_db / 20)
        limiter = Filter.of("alimiter", limit=f"{limit:.5f}", attack=1, release=60, level="false", latency="true")
        return gain, limiter


def normalisation_gain(measured: LoudnessMeasurement, target_lufs: float, true_peak_db: float) -> Normalisation:
    if measured.integrated_lufs is None:
        return Normalisation(0.0, False)  # silence: there is nothing to normalise
    gain = target_lufs - measured.integrated_lufs
    if measured.true_peak_dbtp is not None and measured.true_peak_dbtp + gain > true_peak_db:
        return Normalisation(gain, True, true_peak_db - LIMITER_MARGIN_DB)
    return Normalisation(gain, False)
