"""The digests of a plan's dialogue slices: what ``samples_digest(cut_audio(path, samples))`` gives, for
thousands of slices of a few long tracks, read and hashed alongside the rest of the planning.

A 10,000-shot episode cut from one long track would otherwise open it, stat it and build an array
10,000 times, and hash its 320 MB on the planning thread. Here a native track (farm.media.wav_header)
is opened once and each slice's bytes (they are the little-endian int16 samples) are hashed as read,
silence past the track's end hashed as zeros; anything else goes through ``cut_audio``. Slices the
planner announces (``prefetch``) are read and hashed in order on a worker thread while it builds tasks:
reading and hashing release the GIL, so on a machine with a second core they cost little wall time.
"""

from __future__ import annotations

import hashlib
import os
import threading
from collections.abc import Iterable
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

from farm.media.audio import SampleRange, cut_audio, native_layout, samples_digest
from farm.media.wav_header import PcmLayout

Slice = tuple[Path, SampleRange]
_Key = tuple[Path, int, int, int]
"""A slice as a plain tuple (path, start, end, rate): hashed in C, not by the dataclass's Python ``__hash__``."""
_BATCH = 256
"""Slices per task of the worker: enough that handing them over costs nothing next to hashing them."""


class SliceDigests:
    """Digests of slices of dialogue tracks for one plan; use it as a context manager, closed when the plan
    is made. A slice asked for twice (two speakers on one cut) is hashed once. Nothing outlives the
    reader, so a track edited after it is closed is read afresh by the next one."""

    def __init__(self) -> None:
        self._tracks: dict[tuple[Path, int], tuple[int, PcmLayout] | None] = {}
        self._digests: dict[_Key, str] = {}
        self._pending: dict[_Key, Future[dict[_Key, str | Exception]]] = {}
        self._lock = threading.Lock()
        self._worker: ThreadPoolExecutor | None = None

    def __enter__(self) -> SliceDigests:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        if self._worker is not None:
            self._worker.shutdown(wait=True, cancel_futures=True)
            self._worker = None
        for track in self._tracks.values():
            if track is not None:
                os.close(track[0])
        self._tracks.clear()
        self._digests.clear()
        self._pending.clear()

    def prefetch(self, slices: Iterable[Slice]) -> None:
        """Start hashing ``slices`` on the worker thread, in this order (the order they will be asked for)."""
        keyed = {(path, samples.start, samples.end, samples.sample_rate): (path, samples) for path, samples in slices}
        wanted = [(key, piece) for key, piece in keyed.items() if key not in self._digests and key not in self._pending]
        if not wanted:
            return
        if self._worker is None:
            self._worker = ThreadPoolExecutor(max_workers=1, thread_name_prefix="farm-slice-digests")
        for first in range(0, len(wanted), _BATCH):
            batch = wanted[first : first + _BATCH]
            future = self._worker.submit(self._hash_batch, batch)
            for key, _ in batch:
                self._pending[key] = future

    def digest(self, path: Path, samples: SampleRange) -> str:
        """``samples_digest(cut_audio(path, samples))``; what reading it raised, raised here."""
        key = (path, samples.start, samples.end, samples.sample_rate)
        found = self._digests.get(key)
        if found is None:
            future = self._pending.pop(key, None)
            outcome = future.result()[key] if future is not None else self._hash(path, samples)
            if isinstance(outcome, Exception):
                raise outcome
            self._digests[key] = found = outcome
        return found

    def _hash_batch(self, batch: list[tuple[_Key, Slice]]) -> dict[_Key, str | Exception]:
        outcomes: dict[_Key, str | Exception] = {}
        for key, (path, samples) in batch:
            try:
                outcomes[key] = self._hash(path, samples)
            except Exception as exc:  # raised by digest() for this slice, in the planner's thread
                outcomes[key] = exc
        return outcomes

    def _hash(self, path: Path, samples: SampleRange) -> str:
        with self._lock:  # the worker and the planner share the open tracks and cut_audio's memos
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
