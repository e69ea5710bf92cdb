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

SUFFIXES = {ArtifactKind.SHOT_VIDEO: ".mp4", ArtifactKind.LAST_FRAMES: ".npz"}


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
