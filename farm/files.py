"""Writing files the way a studio's shared storage expects: atomically, and with the modes the umask allows.

Every file farm leaves on disk (shot videos, continuation frames, edits, timelines, reports, thumbnails,
memos, logs) is written to a hidden temporary file beside its destination and renamed into place, so a
reader sees the old file or the whole new one, never half of one, and a crash leaves at most a dot-file.

``tempfile.mkstemp`` would do the rename part but creates its files 0600 (and ``mkdtemp`` its folders
0700): on a shared mount nobody but the rendering account could open the result. So the temporary files
here are created with ``os.open(..., 0o666)`` and the folders with ``os.mkdir(..., 0o777)``: the kernel
takes the process's umask off those modes (``0o666 & ~umask``: group- and world-readable under the usual
0022, private under 0077) and, where the folder has a default POSIX ACL, applies that instead, exactly as
for any file a shell creates. That is why this module never reads the umask: reading it means setting it
(``os.umask`` has no getter), which would race with every other thread creating files meanwhile.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any

_ATTEMPTS = 100
"""Random names to try before giving up on a folder (each collision is a 1 in 2**48 event)."""


def temporary_path(destination: Path, *, suffix: str | None = None, private: bool = False) -> Path:
    """Create (empty) and return a hidden temporary file beside ``destination``, honouring the umask.

    The caller fills it (ffmpeg writing to it by name, say) and hands it to ``publish``; on failure the
    caller removes it. ``suffix`` defaults to the destination's own, so tools that pick a format from the
    name (ffmpeg, OpenTimelineIO) see the right one. ``private`` files (a secret, such as an API token) are
    0600 whatever the umask.
    """
    suffix = destination.suffix if suffix is None else suffix
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_BINARY", 0)
    for _ in range(_ATTEMPTS):
        candidate = destination.parent / f".{destination.stem}.{secrets.token_hex(6)}{suffix}"
        try:
            os.close(os.open(candidate, flags, 0o600 if private else 0o666))
        except FileExistsError:
            continue
        return candidate
    raise FileExistsError(f"{destination.parent}: no free temporary name after {_ATTEMPTS} tries")


def publish(temporary: Path, destination: Path, *, fsync: bool = True) -> None:
    """Rename the finished ``temporary`` onto ``destination`` (atomic within a file system), flushed first
    when ``fsync``: a power cut after the rename must not leave a renamed but empty file."""
    if fsync:
        with temporary.open("rb") as handle:
            os.fsync(handle.fileno())
    os.replace(temporary, destination)


def publish_new(temporary: Path, destination: Path, *, fsync: bool = True) -> bool:
    """Move the finished ``temporary`` to ``destination`` unless a file is there already, which is kept
    (``temporary`` is removed); True if it was published.

    For the content-addressed store, where a path names one recipe: a published file may have a database
    row recording its digest and size, so a second render of the key must not swap the bytes under it. A
    hard link is the atomic "create unless it exists" (two publishers cannot both win); where the file
    system has no hard links the check and the rename are two steps."""
    if fsync:
        with temporary.open("rb") as handle:
            os.fsync(handle.fileno())
    try:
        os.link(temporary, destination)
    except FileExistsError:
        temporary.unlink(missing_ok=True)
        return False
    except OSError:  # no hard links here (some network shares): the next best is check, then rename
        if destination.exists():
            temporary.unlink(missing_ok=True)
            return False
        os.replace(temporary, destination)
        return True
    temporary.unlink()
    return True


@contextmanager
def atomic_file(
    destination: Path, *, text: bool = False, fsync: bool = True, private: bool = False, keep_existing: bool = False
) -> Iterator[IO[Any]]:
    """An open temporary file beside ``destination``, renamed onto it when the block ends without error and
    removed when it raises. ``text`` opens it for UTF-8 text, else binary; ``private`` as for
    ``temporary_path``; ``keep_existing`` publishes with ``publish_new`` (a file already there stays)."""
    temporary = temporary_path(destination, private=private)
    try:
        with temporary.open("w", encoding="utf-8") if text else temporary.open("wb") as handle:
            yield handle
            if fsync:
                handle.flush()
                os.fsync(handle.fileno())
        if keep_existing:
            publish_new(temporary, destination, fsync=False)
        else:
            os.replace(temporary, destination)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise


def write_bytes(destination: Path, data: bytes, *, fsync: bool = True) -> None:
    """``destination`` replaced atomically by ``data``."""
    with atomic_file(destination, fsync=fsync) as handle:
        handle.write(data)


def write_text(destination: Path, text: str, *, fsync: bool = True, private: bool = False) -> None:
    """``destination`` replaced atomically by ``text`` (UTF-8)."""
    with atomic_file(destination, text=True, fsync=fsync, private=private) as handle:
        handle.write(text)


def temporary_dir(parent: Path, *, prefix: str) -> Path:
    """Create and return a hidden folder ``<prefix><random>`` in ``parent``, honouring the umask (unlike
    ``tempfile.mkdtemp``'s 0700), for staging a folder that is renamed into place or working files."""
    for _ in range(_ATTEMPTS):
        candidate = parent / f"{prefix}{secrets.token_hex(6)}"
        try:
            os.mkdir(candidate, 0o777)
        except FileExistsError:
            continue
        return candidate
    raise FileExistsError(f"{parent}: no free temporary folder name after {_ATTEMPTS} tries")
