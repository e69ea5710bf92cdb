"""The edit's dialogue: every shot's slice of its original track, laid end to end in one WAV, sample-exact.

Each track is decoded once to a 48 kHz WAV on disk (the tracks in parallel, one ffmpeg each) and copied
a chunk at a time into the edit's WAV, each shot exactly ``frames / fps`` long on the timeline (see
``edit_spans``), silence past a track's end. On the way through, the whole edit's loudness (integrated,
range, true peak) is measured for its normalisation, and each shot's loudness and the samples either
side of every cut for the continuity checks (one K-weighting pass serves both), so nothing is decoded
or read twice and memory stays flat in the number of shots.
"""

from __future__ import annotations

import os
import wave
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from farm.edit.loudness import EditLoudnessMeter, LoudnessMeasurement, WeightedLoudness
from farm.edit.timeline import EditShot, EditSpan, source_start_sample
from farm.media.audio import mix_speakers
from farm.media.ffmpeg import EDIT_AUDIO_RATE, decode_to_wav, run

EDGE_SAMPLES = 240
"""Samples kept either side of every cut (5 ms at 48 kHz) for the click check."""
AUDIO_CHUNK_SAMPLES = EDIT_AUDIO_RATE
"""Audio is copied and measured one second at a time."""


@dataclass(frozen=True)
class ShotAudioStats:
    """What the audio checks need of one shot, measured while its samples passed through assembly."""

    loudness_lufs: float | None
    """Integrated loudness of the slice (mono, BS.1770); None under 400 ms or silent."""
    peak: float
    """Largest absolute sample, full scale 1.0."""
    head: np.ndarray = field(repr=False)
    """The first EDGE_SAMPLES samples (float, [-1, 1])."""
    tail: np.ndarray = field(repr=False)
    """The last EDGE_SAMPLES samples."""
    padded_samples: int = 0
    """Samples of silence added because the slice ran past the end of its track."""


@dataclass(frozen=True)
class LaidAudio:
    shots: list[ShotAudioStats]
    """Per shot, in edit order."""
    loudness: LoudnessMeasurement
    """The whole edit as ffmpeg's ebur128 measures it on the dual-mono stereo the listener gets."""


def lay_audio(
    shots: Sequence[EditShot], spans: Sequence[EditSpan], destination: Path, work: Path, *, workers: int | None = None
) -> LaidAudio:
    """Write the edit's mono 16-bit WAV to ``destination`` (tracks decoded into ``work``); stats per shot."""
    tracks = _decode_tracks(shots, work, workers or os.cpu_count() or 1)
    stats = []
    edit_meter = EditLoudnessMeter(EDIT_AUDIO_RATE)
    with wave.open(str(destination), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(EDIT_AUDIO_RATE)
        for shot, span in zip(shots, spans, strict=True):
            readers = [
                _read_samples(tracks[audio.path], source_start_sample(audio), span.samples)
                for audio in (shot.audio, *shot.other_speakers_audio)
            ]
            stats.append(_copy_chunks(readers[0] if len(readers) == 1 else _mixed(readers), out, edit_meter))
    with wave.open(str(destination), "rb") as laid:

        def read(first: int, count: int) -> np.ndarray:
            laid.setpos(min(first, laid.getnframes()))
            return np.frombuffer(laid.readframes(count), "<i2").astype(np.float64) / 32768.0

        loudness = edit_meter.measure(read)
    return LaidAudio(stats, loudness)


def _mixed(readers: list[Iterator[tuple[np.ndarray, int]]]) -> Iterator[tuple[np.ndarray, int]]:
    """A two-shot's speakers read in step (their slices are equally long) and summed as the shot's own
    file sums them (farm.media.audio.mix_speakers); padding is the most any speaker needed."""
    for chunks in zip(*readers, strict=True):
        yield mix_speakers(np.stack([chunk for chunk, _ in chunks])), max(missing for _, missing in chunks)


def _decode_tracks(shots: Sequence[EditShot], work: Path, workers: int) -> dict[Path, Path]:
    """Every track the shots cut from, decoded to a WAV in ``work`` by up to ``workers`` ffmpeg processes."""
    sources = list(dict.fromkeys(audio.path for shot in shots for audio in (shot.audio, *shot.other_speakers_audio)))
    targets = [work / f"track_{index:04d}.wav" for index in range(len(sources))]
    with ThreadPoolExecutor(max_workers=max(1, min(workers, len(sources)))) as pool:
        decoded = list(pool.map(decode_track, sources, targets))
    return dict(zip(sources, decoded, strict=True))


def decode_track(source: Path, destination: Path) -> Path:
    """The whole track as 48 kHz mono 16-bit WAV on disk (ffmpeg streams it; nothing held in memory)."""
    run(decode_to_wav(source, destination, sample_rate=EDIT_AUDIO_RATE), f"{source}: decoding the dialogue track")
    return destination


def _copy_chunks(
    chunks: Iterator[tuple[np.ndarray, int]], out: wave.Wave_write, edit_meter: EditLoudnessMeter
) -> ShotAudioStats:
    meter = WeightedLoudness(EDIT_AUDIO_RATE)
    head = np.zeros(0, np.float64)
    tail = np.zeros(0, np.float64)
    peak = 0.0
    padded = 0
    for chunk, silence in chunks:
        out.writeframes(chunk.astype("<i2", copy=False).tobytes())
        values = chunk.astype(np.float64) / 32768.0
        meter.feed_weighted(edit_meter.feed(values))
        if len(head) < EDGE_SAMPLES:
            head = np.concatenate([head, values[: EDGE_SAMPLES - len(head)]])
        tail = np.concatenate([tail[-EDGE_SAMPLES:], values[-EDGE_SAMPLES:]])[
            -EDGE_SAMPLES:
        ].copy()  # no view on the chunk
        peak = max(peak, float(np.max(np.abs(values)))) if len(values) else peak
        padded += silence
    return ShotAudioStats(meter.integrated(), peak, head, tail, padded)


def _read_samples(track: Path, start: int, count: int) -> Iterator[tuple[np.ndarray, int]]:
    """Samples ``[start, start + count)`` of a mono 16-bit WAV in chunks, silence past its end.

    Yields (chunk, how many of its samples are padding).
    """
    with wave.open(str(track), "rb") as source:
        available = source.getnframes()
        if start < available:
            source.setpos(start)
        position, end = start, start + count
        while position < end:
            size = min(AUDIO_CHUNK_SAMPLES, end - position)
            real = np.frombuffer(source.readframes(size), "<i2") if position < available else np.zeros(0, np.int16)
            missing = size - len(real)
            if missing:
                real = np.concatenate([real, np.zeros(missing, np.int16)])
            yield real, missing
            position += size
