"""The dispatch pause a full disk causes: no shot starts until the store has room for one again.

A full disk is nobody's fault but the storage's, and retrying at once only fills the log: the scheduler
stops handing out shots (running ones finish or fail on their own), checks the free space every few
seconds, and goes on by itself once someone makes room. ``needed`` is what one shot of the job is likely
to write (twice the largest video per frame seen so far, times the shot's frames), so the pause does not
end on a few freed kilobytes only to fill up again.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

from farm.storage import free_bytes, free_text, human_bytes

MINIMUM_ROOM = 1_000_000
"""Bytes a shot needs at the least before dispatch resumes (before any video was measured)."""

SAFETY = 2.0
"""How many times the estimated size of a shot must be free: a shot's temp file and its final file."""


@dataclass
class StoragePause:
    """Whether dispatch waits for room on a disk, and for how much."""

    check_seconds: float = 2.0
    path: Path | None = None
    needed: int = 0
    since: float = 0.0
    _checked: float = 0.0

    @property
    def active(self) -> bool:
        return self.path is not None

    def begin(self, path: Path, needed: int, *, waiting: str = "no shot starts", unit: str = "a shot") -> str:
        """Pause until ``needed`` bytes are free under ``path``; the message says what waits (``waiting``)
        for how much room (that ``unit`` needs)."""
        self.path, self.needed = path, max(MINIMUM_ROOM, needed)
        self.since = self._checked = time.monotonic()
        return (
            f"paused: the disk holding {path} is full ({free_text(path)}, {unit} needs about "
            f"{human_bytes(self.needed)}); {waiting} until there is room, then the job goes on by itself"
        )

    def room_again(self) -> str | None:
        """The resume message once there is room (checked at most every ``check_seconds``), else None."""
        now = time.monotonic()
        if self.path is None or now - self._checked < self.check_seconds:
            return None
        self._checked = now
        try:
            free = free_bytes(self.path)
        except OSError:
            return None
        if free < self.needed:
            return None
        message = (
            f"resumed: the disk holding {self.path} has room again ({human_bytes(free)} free) after "
            f"{now - self.since:.0f} s"
        )
        self.path = None
        return message


def shot_room(bytes_per_frame: float, frames: int) -> int:
    """The room to wait for: ``SAFETY`` times a shot of ``frames`` at ``bytes_per_frame``."""
    return int(SAFETY * bytes_per_frame * frames)
