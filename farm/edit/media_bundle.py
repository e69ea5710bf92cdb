"""The edit's media named for editors: ``media/<shot_id>_v<N>.mp4`` beside edit.otio, one per shot.

A shot's render is stored under its cache key (64 hex characters), which is what an NLE's bin would show
if the editorial files pointed there. Each edit version gets a ``media`` folder of hard links to those
renders instead, named by shot id and take: ``v1`` for a shot's first render in the job's edits, the
same ``vN`` while later versions re-use that render, ``vN+1`` when a retake or a new recipe replaces it.
A hard link costs no disk space and, unlike a symbolic link, is an ordinary file to an editor's machine
on an SMB or NFS share; where the data directory's file system cannot link (the edits on another
mount), the file is copied.

``takes.json`` in the folder records each shot's take and cache key, which is how the next version knows
whether a shot's render changed.
"""

from __future__ import annotations

import json
import os
import re
import shutil
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from farm import files
from farm.edit.timeline import EditShot

MEDIA_DIR = "media"
TAKES_FILE = "takes.json"
_VERSION_NAME = re.compile(r"^v(\d{3,})$")


@dataclass(frozen=True)
class BundledShot:
    shot_id: str
    take: int
    path: Path
    """The shot-named file in the version's ``media`` folder."""


def bundle_media(shots: Sequence[EditShot], version_dir: Path) -> dict[str, BundledShot]:
    """Link every shot's render into ``version_dir/media`` under its shot-named file; shot id -> BundledShot."""
    earlier = previous_takes(version_dir)
    folder = version_dir / MEDIA_DIR
    folder.mkdir(parents=True, exist_ok=True)
    bundled = {}
    for shot in shots:
        take = _take(earlier.get(shot.shot_id), shot.cache_key)
        path = folder / f"{shot.shot_id}_v{take}.mp4"
        _link_or_copy(shot.video, path)
        bundled[shot.shot_id] = BundledShot(shot.shot_id, take, path)
    takes = {shot.shot_id: {"take": bundled[shot.shot_id].take, "cache_key": shot.cache_key} for shot in shots}
    _write_json(folder / TAKES_FILE, takes)
    return bundled


def previous_takes(version_dir: Path) -> dict[str, Mapping[str, object]]:
    """The takes of the newest earlier version beside ``version_dir`` (``v003`` for ``v004``); {} if none."""
    here = _VERSION_NAME.match(version_dir.name)
    if here is None or not version_dir.parent.is_dir():
        return {}
    earlier = sorted(
        (int(match.group(1)), entry.path)
        for entry in os.scandir(version_dir.parent)
        if (match := _VERSION_NAME.match(entry.name)) and int(match.group(1)) < int(here.group(1))
    )
    for _, folder in reversed(earlier):
        takes = Path(folder) / MEDIA_DIR / TAKES_FILE
        if takes.is_file():
            loaded = json.loads(takes.read_text())
            return loaded if isinstance(loaded, dict) else {}
    return {}


def _take(before: Mapping[str, object] | None, cache_key: str) -> int:
    if before is None or not isinstance(before.get("take"), int):
        return 1
    take = int(before["take"])  # type: ignore[call-overload]
    return take if before.get("cache_key") == cache_key else take + 1


def _link_or_copy(source: Path, destination: Path) -> None:
    """A hard link (atomic: it exists whole or not at all), else a copy published by rename."""
    try:
        os.link(source, destination)
        return
    except OSError:
        pass
    temporary = files.temporary_path(destination, suffix=".mp4")
    try:
        shutil.copyfile(source, temporary)
        files.publish(temporary, destination)
    finally:
        temporary.unlink(missing_ok=True)


def _write_json(path: Path, value: object) -> None:
    files.write_text(path, json.dumps(value, indent=1, sort_keys=True))
