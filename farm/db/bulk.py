"""Reads that build tens of thousands of records at once, with the cyclic garbage collector paused.

A 10,000-shot status read allocates some 300,000 objects. Every 700 allocations the collector runs, and
each burst promotes objects until a full collection walks everything the process holds (SQLAlchemy,
rich, in the manager Ray and FastAPI too); on the 10,000-shot read that was half of its CPU time
(bench/status_scale.py). Records are plain acyclic data, so collecting after the read instead of
during it frees the same memory.
"""

from __future__ import annotations

import gc
import threading
from collections.abc import Iterator
from contextlib import contextmanager

_lock = threading.Lock()
_depth = 0
_was_enabled = False


@contextmanager
def collector_paused() -> Iterator[None]:
    """Pause the collector for the block; reads on other threads may nest, and the last one out restores
    it (only if it was on: a caller that turned it off keeps it off)."""
    global _depth, _was_enabled
    with _lock:
        if _depth == 0:
            _was_enabled = gc.isenabled()
            gc.disable()
        _depth += 1
    try:
        yield
    finally:
        with _lock:
            _depth -= 1
            if _depth == 0 and _was_enabled:
                gc.enable()
