"""Python's cyclic garbage collector paused while tens of thousands of records are built at once.

Reading and planning a 10,000-shot list, or reading a 10,000-shot job's status, allocates hundreds of
thousands to millions of objects and keeps most of them. Every 700 allocations the collector runs, and
each burst promotes objects until a full collection walks everything the process holds (SQLAlchemy,
rich, in the manager Ray and FastAPI too): half the CPU time of the status read (bench/status_scale.py),
a third of a second of the front end's (bench/frontend_scale.py), for nothing found. Records, documents
and plans are plain acyclic data, so collecting after the block instead of during it frees the same
memory; refcounting frees what is dropped as before.
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
    """Pause the collector for the block; blocks on other threads may nest, and the last one out restores
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
