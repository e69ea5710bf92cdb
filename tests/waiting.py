"""Waiting on a condition with a deadline: how the tests wait for a farm that is busy elsewhere."""

from __future__ import annotations

import time
from collections.abc import Callable


def wait_for(condition: Callable[[], object], seconds: float, what: str, *, every: float = 0.1) -> object:
    """The first truthy value of ``condition()``, polled every ``every`` seconds; AssertionError naming
    ``what`` once ``seconds`` have passed without one."""
    deadline = time.monotonic() + seconds
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise AssertionError(f"timed out after {seconds:.0f} s waiting for {what}")
        time.sleep(every)
