"""The digests of a plan's dialogue slices: what ``samples_digest(cut_audio(path, samples))`` gives, for
thousands of slices of a few long tracks.

A 10,000-shot episode cut from one long track would otherwise open it, stat it and build an array
10,000 times. Here a native track (farm.media.wav_header) is opened once and each slice's bytes (they
are the little-endian int16 samples) are hashed as read, silence past the track's end hashed as zeros;
anything else goes through ``cut_audio``. (Hashing on a worker thread was tried and lost: the planning
thread holds the GIL, so the worker waits a switch interval after every read and every hash.)
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

from farm.media.audio import SampleRange, cut_audio, native_layout, samples_digest
from farm.media.wav_header import PcmLayout

_Key = tuple[Path, int, int, int]
"""A slice as a plain tuple (path, start, end, rate): hashed in C, not by the dataclass's Python ``__hash__``."""


class SliceDigests:
    """Digests of slices of dialogue tracks for one plan; use it as a context manager, closed when the plan
    is made. A slice asked for twice (two speakers on one cut) is hashed once. Nothing outlives the
    reader, so a track edited after it is closed is read afresh by the next one."""

    def __init__(self) -> None:
        self._tracks: dict[tuple[Path, int], tuple[int, PcmLayout] | None] = {}
        self._digests: dict[_Key, str] = {}

    def __enter__(self) -> SliceDigests:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        for track in self._tracks.values():
            if track is not None:
                os.close(track[0])
        self._tracks.clear()
        self._digests.clear()

    def digest(self, path: Path, samples: SampleRange) -> str:
        """``samples_digest(cut_audio(path, samples))``."""
        key = (path, samples.start, samples.end, samples.sample_rate)
        found = self._digests.get(key)
        if found is None:
            self._digests[key] = found = self._hash(path, samples)
        return found

    def _hash(self, path: Path, samples: SampleRange) -> str:
        track = self._track(path, samples.sample_rate) if samples.start >= 0 else None
        if track is not None:
            descriptor, layout = track
            start = min(samples.start, layout.samples)
            end = min(max(samples.end, start), layout.samples)
            try:
                raw = os.pread(descriptor, 2 * (end - start), layout.offset + 2 * start)
            except OSError:
                raw = b""
            if len(raw) == 2 * (end - start):  # else the file changed under us: cut it the ordinary way
                digest = hashlib.sha256(raw)
                if samples.count > end - start:
                    digest.update(bytes(2 * (samples.count - (end - start))))
                return digest.hexdigest()
        return samples_digest(cut_audio(path, samples))

    def _track(self, path: Path, sample_rate: int) -> tuple[int, PcmLayout] | None:
        key = (path, sample_rate)
        if key not in self._tracks:
            layout = native_layout(path, sample_rate)
            descriptor = None
            if layout is not None:
                try:
                    descriptor = os.open(path, os.O_RDONLY)
                except OSError:
                    descriptor = None
            self._tracks[key] = (descriptor, layout) if descriptor is not None and layout is not None else None
        return self._tracks[key]
