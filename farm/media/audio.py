"""Dialogue audio: decode any format ffmpeg reads to mono PCM at a fixed rate, cut it sample-exactly, write WAV.

Decoding a whole track once and slicing by sample index (rather than asking ffmpeg to seek) keeps every
cut exact and repeatable: the same shot list always yields the same samples, so cache keys are stable.
A track that is already what decoding makes (a mono 16-bit PCM WAV at the model's rate, see
farm.media.wav_header) is never decoded: its length comes from its header and a cut reads just its
samples, the same ones, so an episode's hours of dialogue cost neither the time nor the memory.
"""

from __future__ import annotations

import hashlib
import wave
from collections import OrderedDict
from collections.abc import Iterable
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import numpy as np

from farm import defaults
from farm.errors import MediaError
from farm.media.ffmpeg import decode_to_pcm, run
from farm.media.wav_header import PcmLayout, native_pcm_layout

MODEL_SAMPLE_RATE = defaults.MODEL_SAMPLE_RATE
_DECODE_CACHE_SIZE = 8
_decoded: OrderedDict[tuple[str, int, int, int], np.ndarray] = OrderedDict()
_layouts: OrderedDict[tuple[str, int, int, int], PcmLayout | None] = OrderedDict()


@dataclass(frozen=True)
class SampleRange:
    """Samples ``[start, end)`` of a track decoded at ``sample_rate``."""

    start: int
    end: int
    sample_rate: int = MODEL_SAMPLE_RATE

    @property
    def count(self) -> int:
        return self.end - self.start


@dataclass(frozen=True)
class AudioSlice:
    """Samples ``[start_sample, end_sample)`` of a track decoded to mono at ``sample_rate``."""

    track_id: str
    path: Path
    start_sample: int
    end_sample: int
    sha256: str
    sample_rate: int = MODEL_SAMPLE_RATE

    @property
    def sample_range(self) -> SampleRange:
        return SampleRange(self.start_sample, self.end_sample, self.sample_rate)

    @property
    def start_seconds(self) -> Fraction:
        return Fraction(self.start_sample, self.sample_rate)

    @property
    def end_seconds(self) -> Fraction:
        return Fraction(self.end_sample, self.sample_rate)


def decode_audio(path: Path, sample_rate: int = MODEL_SAMPLE_RATE) -> np.ndarray:
    """The whole file as mono int16 samples at ``sample_rate``; memoised on path, size and mtime."""
    try:
        stat = path.stat()
    except OSError as exc:
        raise MediaError(f"{path}: cannot read audio ({exc.strerror})") from exc
    key = (str(path.resolve()), stat.st_size, stat.st_mtime_ns, sample_rate)
    if key in _decoded:
        _decoded.move_to_end(key)
        return _decoded[key]
    raw = run(decode_to_pcm(path, sample_rate=sample_rate), f"{path}: decoding audio").stdout
    samples = np.frombuffer(raw, dtype=np.int16)
    samples.flags.writeable = False
    _decoded[key] = samples
    while len(_decoded) > _DECODE_CACHE_SIZE:
        _decoded.popitem(last=False)
    return samples


def require_audio_stream(path: Path) -> None:
    """Raise MediaError unless ``path`` is a media file with at least one audio stream."""
    import av

    try:
        with av.open(str(path)) as container:
            if not container.streams.audio:
                kinds = ", ".join(sorted({stream.type for stream in container.streams})) or "no streams"
                raise MediaError(f"{path}: has no audio stream (it contains {kinds})")
    except av.FFmpegError as exc:
        raise MediaError(f"{path}: not a media file ffmpeg can open ({exc.strerror or exc})") from exc


def seconds_to_samples(seconds: Fraction, sample_rate: int = MODEL_SAMPLE_RATE) -> int:
    return round(seconds * sample_rate)


def native_layout(path: Path, sample_rate: int) -> PcmLayout | None:
    """``native_pcm_layout``, memoised on path, size and mtime: a plan cuts one track thousands of times."""
    try:
        stat = path.stat()
    except OSError:
        return None
    key = (str(path), stat.st_size, stat.st_mtime_ns, sample_rate)
    if key not in _layouts:
        _layouts[key] = native_pcm_layout(path, sample_rate)
        while len(_layouts) > _DECODE_CACHE_SIZE:
            _layouts.popitem(last=False)
    return _layouts[key]


def track_samples(path: Path, sample_rate: int = MODEL_SAMPLE_RATE) -> int:
    """How many samples the track decodes to at ``sample_rate``: from the header when it needs no decoding."""
    layout = native_layout(path, sample_rate)
    return layout.samples if layout is not None else len(decode_audio(path, sample_rate))


def probe_track(path: Path, sample_rate: int = MODEL_SAMPLE_RATE) -> int:
    """``track_samples`` of a file checked to be audio (MediaError if not): a native WAV is audio by its
    header, so only another file is opened by ffmpeg to look for an audio stream."""
    layout = native_layout(path, sample_rate)
    if layout is not None:
        return layout.samples
    require_audio_stream(path)
    return len(decode_audio(path, sample_rate))


def cut_audio(path: Path, samples: SampleRange) -> np.ndarray:
    """Samples ``[start, end)`` of the decoded track, padded with silence past its end."""
    layout = native_layout(path, samples.sample_rate) if samples.start >= 0 else None
    cut = _read_native(path, layout, samples) if layout is not None else None
    if cut is None:
        cut = decode_audio(path, samples.sample_rate)[samples.start : samples.end]
    if len(cut) < samples.count:
        cut = np.concatenate([cut, np.zeros(samples.count - len(cut), dtype=np.int16)])
    return cut


def _read_native(path: Path, layout: PcmLayout, samples: SampleRange) -> np.ndarray | None:
    """Samples ``[start, end)`` read straight from a native WAV's data chunk (None if the file changed
    under us: the caller decodes it then)."""
    start = min(max(samples.start, 0), layout.samples)
    end = min(max(samples.end, start), layout.samples)
    try:
        with path.open("rb") as file:
            file.seek(layout.offset + 2 * start)
            raw = file.read(2 * (end - start))
    except OSError:
        return None
    if len(raw) != 2 * (end - start):
        return None
    return np.frombuffer(raw, dtype="<i2").astype(np.int16, copy=False)


def samples_digest(samples: np.ndarray) -> str:
    """sha256 of little-endian int16 PCM: the identity of an audio slice in cache keys."""
    return hashlib.sha256(samples.astype("<i2", copy=False).tobytes()).hexdigest()


def write_wav(path: Path, samples: np.ndarray, sample_rate: int) -> None:
    """Mono 16-bit WAV from int16 or float ([-1, 1]) samples."""
    write_wav_chunks(path, (samples,), sample_rate)


def write_wav_chunks(path: Path, chunks: Iterable[np.ndarray], sample_rate: int) -> None:
    """Mono 16-bit WAV from int16 or float ([-1, 1]) chunks, written one at a time: a long take's audio
    never has to be in memory at once."""
    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(sample_rate)
        for samples in chunks:
            if samples.dtype != np.int16:
                samples = np.clip(np.round(samples.astype(np.float64) * 32767.0), -32768, 32767).astype(np.int16)
            out.writeframes(samples.astype("<i2", copy=False).tobytes())


def mix_speakers(tracks: np.ndarray) -> np.ndarray:
    """int16 speakers (k, n) -> their mix (n,): the plain sum a dialogue mixer makes of close mics, clipped
    to 16 bits. Used for a two-shot's file and for its place in the edit, so both carry the same sound."""
    if tracks.ndim == 1:
        return tracks
    summed = tracks.astype(np.int32).sum(axis=0)
    return np.clip(summed, -32768, 32767).astype(np.int16)
