"""The artifact store: finished shots and their continuation frames, addressed by cache key.

Paths derive from the cache key alone, so the store never holds two artifacts for one key. One attempt at
a time renders a key (it claims it: ``farm.db.claims``), and a published file is never replaced: should a
second render of a key finish anyway (a claim that lapsed under a render still running), its file is
dropped and the first one's bytes stay, so an artifact's bytes always match its row (the worker measures
the file that is there). A file no intact row vouches for (truncated, or left by a render that was never
recorded) is removed by the attempt that claimed the key, before it renders (``clear_unrecorded``).

Every file is written to a hidden temporary beside it first (``farm.files.temporary_path``:
``.<key>.<12 hex><suffix>``, so ``.<key>.*.part.mp4`` / ``.part.wav`` / ``.npz``). A worker that dies
mid-render (its node lost, or killed as stuck) leaves them; the attempt's driver removes them when it
records the crash, while the attempt still holds the key's claim (``remove_temporaries``), so no other
render of the key can be writing there.
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Iterable
from pathlib import Path

import numpy as np

from farm import files
from farm.db.kinds import ArtifactKind
from farm.db.queries import find_artifact, find_artifacts
from farm.db.records import ArtifactInfo
from farm.db.session import Database

log = logging.getLogger(__name__)

SUFFIXES = {ArtifactKind.SHOT_VIDEO: ".mp4", ArtifactKind.LAST_FRAMES: ".npz"}
TEMPORARY = re.compile(r"^\.(?P<key>[0-9a-f]{64})\.[0-9a-f]{12}\..+$")
"""The name of a temporary beside an artifact: ``.<cache key>.<12 hex><suffix>``."""


def intact_artifact(db: Database, cache_key: str, kind: ArtifactKind = ArtifactKind.SHOT_VIDEO) -> ArtifactInfo | None:
    """The recorded artifact for ``cache_key`` if its file is still there at its recorded size: a cache hit.

    A row whose file was deleted or truncated is no hit (the shot renders again and replaces the file).
    """
    artifact = find_artifact(db, cache_key, kind)
    return artifact if artifact is not None and _intact(artifact) else None


def intact_artifacts(
    db: Database, cache_keys: Iterable[str], kind: ArtifactKind = ArtifactKind.SHOT_VIDEO
) -> dict[str, ArtifactInfo]:
    """``intact_artifact`` of each of ``cache_keys`` that is a cache hit, by key, asked of the database at once."""
    return {key: artifact for key, artifact in find_artifacts(db, cache_keys, kind).items() if _intact(artifact)}


def _intact(artifact: ArtifactInfo) -> bool:
    path = Path(artifact.path)
    return path.is_file() and path.stat().st_size == artifact.bytes


def clear_unrecorded(db: Database, store: ArtifactStore, cache_key: str) -> None:
    """Remove the key's files unless its video is an intact, recorded artifact: the attempt that holds the
    key's claim calls this before it renders, so the store (which keeps what it finds) is not left serving
    a truncated or unrecorded file, and the continuation frames come from the same render as the video."""
    if intact_artifact(db, cache_key) is not None:
        return
    for kind in SUFFIXES:
        store.path_for(cache_key, kind).unlink(missing_ok=True)


class ArtifactStore:
    def __init__(self, root: Path) -> None:
        self.root = root

    def path_for(self, cache_key: str, kind: ArtifactKind) -> Path:
        return self.root / cache_key[:2] / f"{cache_key}{SUFFIXES[kind]}"

    def remove_temporaries(self, cache_key: str) -> tuple[Path, ...]:
        """Remove the temporaries of ``cache_key``'s files and return them: what a render that died with its
        worker left. Only the attempt that holds the key's claim may call this (``farm.db.claims``): with
        the claim, no other render of the key can be writing them."""
        shard = self.root / cache_key[:2]
        try:
            with os.scandir(shard) as listing:
                names = [entry.name for entry in listing]
        except (FileNotFoundError, NotADirectoryError):
            return ()
        removed = []
        for name in names:
            match = TEMPORARY.match(name)
            if match is None or match.group("key") != cache_key:
                continue
            try:
                (shard / name).unlink()
            except FileNotFoundError:
                continue
            log.info("removed %s: left by a render of key %s that died with its worker", shard / name, cache_key[:12])
            removed.append(shard / name)
        return tuple(removed)

    def save_last_frames(self, cache_key: str, frames: np.ndarray) -> Path:
        """Write (k, H, W, 3) uint8 frames atomically; returns the final path."""
        path = self.path_for(cache_key, ArtifactKind.LAST_FRAMES)
        path.parent.mkdir(parents=True, exist_ok=True)
        with files.atomic_file(path, keep_existing=True) as out:
            np.savez(out, frames=frames)
        return path

    @staticmethod
    def load_last_frames(path: Path) -> np.ndarray:
        with np.load(path) as archive:
            return archive["frames"]
