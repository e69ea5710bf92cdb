"""Telling a full disk from every other failure, and how much room a folder has.

A full disk (ENOSPC, or a quota: EDQUOT) reaches farm in several shapes: an ``OSError`` from Python's own
writes, or an ffmpeg child that printed "No space left on device" before it died (farm sees a
``MediaError`` whose cause holds ffmpeg's log). ``out_of_space`` recognises all of them in one place, so
the worker maps them to ``StorageFull`` at the boundary and the scheduler and the edit treat them as the
storage's fault rather than the shot's or the node's.
"""

from __future__ import annotations

import errno
import shutil
import subprocess
from pathlib import Path

from farm.errors import StorageFull

_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT})
_WORDS = ("no space left on device", "disk quota exceeded", "database or disk is full")


def out_of_space(exc: BaseException) -> bool:
    """Whether ``exc``, or anything in its cause/context chain, says a disk is full."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, StorageFull):
            return True
        if isinstance(current, OSError) and current.errno in _ERRNOS:
            return True
        text = str(current)
        if isinstance(current, subprocess.CalledProcessError) and current.stderr:
            stderr = current.stderr
            text += stderr.decode(errors="replace") if isinstance(stderr, bytes) else str(stderr)
        if any(words in text.lower() for words in _WORDS):
            return True
        current = current.__cause__ or current.__context__
    return False


def free_bytes(path: Path) -> int:
    """Bytes free to an unprivileged writer on the filesystem holding ``path`` (or its nearest existing
    parent: the folder may not exist yet)."""
    probe = Path(path)
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    return shutil.disk_usage(probe).free


def free_text(path: Path) -> str:
    """``812 kB free`` under ``path``, as a message says it (or that it cannot be told)."""
    try:
        return f"{human_bytes(free_bytes(path))} free"
    except OSError:
        return "free space unknown"


def storage_full(subject: str, path: Path, exc: BaseException, *, needed: int = 0) -> StorageFull:
    """The located ``StorageFull`` for ``subject`` (``shot sc01_010``, ``edit v003 of job 4``) writing under
    ``path``, keeping ``exc`` as its cause."""
    error = StorageFull(
        f"{subject}: the disk holding {path} is full ({free_text(path)}); free some space there and farm goes "
        "on by itself",
        str(path),
        needed,
    )
    error.__cause__ = exc
    return error


def human_bytes(count: float) -> str:
    """``count`` bytes as a person reads them (``812 kB``, ``40.3 MB``, ``2.1 GB``)."""
    for unit, size in (("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if count >= size:
            return f"{count / size:.1f} {unit}"
    return f"{int(count)} B"
