"""Paths in the database are stored relative to the data directory, and read back absolute against it.

A data directory is moved, restored from a backup elsewhere, or mounted at another place on another
machine (``/mnt/farm`` here, ``/Volumes/farm`` there). A database holding absolute paths would then point
at files that are no longer there, and assembly would ask for shots to be re-rendered that sit on disk. So
the writers store a path under the data directory as a relative POSIX path (``artifacts/3f/3f2a....mp4``)
and the readers join it to the data directory of the process reading: every record a caller gets holds a
usable absolute path, and nothing above this module ever sees a stored one. A path outside the data
directory is stored, and read back, as it is.

A ``Database`` opened without a data directory (a script, most of the database's own tests) stores and
reads paths unchanged.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path, PurePosixPath, PureWindowsPath
from typing import Any

PATH_FIELDS = frozenset({"path", "artifact_path", "video_path", "otio_path", "report_path", "log_path"})
"""The record fields that hold a stored path (``artifacts.path``, ``edits.*_path``, ``renders.log_path``)."""


@dataclass(frozen=True)
class DataPaths:
    """The conversion between stored and absolute paths for one data directory (None: no conversion)."""

    data_dir: Path | None = None

    def to_stored(self, path: str | os.PathLike[str] | None) -> str | None:
        """``path`` relative to the data directory (POSIX separators) when it is inside it, else as it is."""
        if path is None:
            return None
        text = os.fspath(path)
        if self.data_dir is None or not os.path.isabs(text):
            return text
        for candidate, root in ((Path(text), self.data_dir), (Path(os.path.realpath(text)), self._real_root())):
            try:
                return candidate.relative_to(root).as_posix()
            except ValueError:
                continue
        return text

    def to_absolute(self, stored: str | None) -> str | None:
        """The stored path as an absolute path under this process's data directory (absolute ones unchanged)."""
        if stored is None or self.data_dir is None or _is_absolute(stored):
            return stored
        return str(self.data_dir.joinpath(*PurePosixPath(stored).parts))

    def resolve_row(self, names: Sequence[str], values: Sequence[Any]) -> tuple[Any, ...]:
        """``values`` (a row in the order of ``names``) with the ``PATH_FIELDS`` among them made absolute."""
        if self.data_dir is None:
            return tuple(values)
        resolved = list(values)
        for index in _path_indexes(tuple(names)):
            resolved[index] = self.to_absolute(resolved[index])
        return tuple(resolved)

    def _real_root(self) -> Path:
        assert self.data_dir is not None
        return Path(os.path.realpath(self.data_dir))


@cache
def _path_indexes(names: tuple[str, ...]) -> tuple[int, ...]:
    """Where the path fields are in a row of ``names`` (looked up once per query shape: status reads build
    ten thousand rows)."""
    return tuple(index for index, name in enumerate(names) if name in PATH_FIELDS)


def _is_absolute(stored: str) -> bool:
    """Absolute on this system or written on another one (``C:\\farm\\...`` read on Linux is not relative)."""
    return os.path.isabs(stored) or PureWindowsPath(stored).is_absolute() or stored.startswith("/")
