"""The artifact store: finished shots and their continuation frames, addressed by cache key.

Paths derive from the cache key alone, so two workers that render the same recipe (a retried shot whose
first attempt was not dead after all) write the same file, and the second atomic rename replaces an
identical result: the store never holds two artifacts for one key.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from farm import files
from farm.db.kinds import ArtifactKind
from farm.db.queries import find_artifact
from farm.db.records import ArtifactInfo
from farm.db.session import Database

SUFFIXES = {ArtifactKind.SHOT_VIDEO: ".mp4", ArtifactKind.LAST_FRAMES: ".npz"}


def intact_artifact(db: Database, cache_key: str, kind: ArtifactKind = ArtifactKind.SHOT_VIDEO) -> ArtifactInfo | None:
    """The recorded artifact for ``cache_key`` if its file is still there at its recorded size: a cache hit.

    A row whose file was deleted or truncated is no hit (the shot renders again and replaces the file).
    """
    artifact = find_artifact(db, cache_key, kind)
    if artifact is None:
        return None
    path = Path(artifact.path)
    if not path.is_file() or path.stat().st_size != artifact.bytes:
        return None
    return artifact


class ArtifactStore:
    def __init__(self, root: Path) -> None:
        self.root = root

    def path_for(self, cache_key: str, kind: ArtifactKind) -> Path:
        return self.root / cache_key[:2] / f"{cache_key}{SUFFIXES[kind]}"

    def save_last_frames(self, cache_key: str, frames: np.ndarray) -> Path:
        """Write (k, H, W, 3) uint8 frames atomically; returns the final path."""
        path = self.path_for(cache_key, ArtifactKind.LAST_FRAMES)
        path.parent.mkdir(parents=True, exist_ok=True)
        with files.atomic_file(path) as out:
            np.savez(out, frames=frames)
        return path

    @staticmethod
    def load_last_frames(path: Path) -> np.ndarray:
        with np.load(path) as archive:
            return archive["frames"]
