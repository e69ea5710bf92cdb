"""The faces of reference portraits, memoised by file sha256 in memory and in a JSON file in the data dir.

Planning frames every shot from its portrait's face; detecting faces in a full-size photo takes about a
second, so a plan of a long episode would spend most of its time re-detecting the same few portraits.
The memo is keyed by content, so an edited portrait is detected afresh whatever its path.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from farm import files
from farm.digests import file_sha256
from farm.media.faces import PORTRAIT_DETECTION_SIDE, Face, detect_faces
from farm.media.image import load_rgb

MEMO_VERSION = 1
"""Bump when detection changes (another detector, another downscale): old entries are then ignored."""


@dataclass(frozen=True)
class PortraitFaces:
    """A portrait's size (as loaded, EXIF orientation applied) and its faces in its own pixels, largest first."""

    size: tuple[int, int]
    faces: tuple[Face, ...]


_memory: dict[str, PortraitFaces] = {}


def detect_portrait_faces(path: Path) -> PortraitFaces:
    """Faces of the portrait at ``path``: searched at most PORTRAIT_DETECTION_SIDE px large, mapped back."""
    image = load_rgb(path)
    height, width = image.shape[:2]
    scale = min(1.0, PORTRAIT_DETECTION_SIDE / max(width, height))
    small = image
    if scale < 1.0:
        small = np.asarray(Image.fromarray(image).resize((round(width * scale), round(height * scale))))
    found = detect_faces(small)
    if not found:
        found = detect_faces(small, upsample=1)  # faces under ~80 px are found at twice the size
    faces = tuple(
        Face(
            round(face.left / scale),
            round(face.top / scale),
            round(face.right / scale),
            round(face.bottom / scale),
            face.landmarks / scale,
        )
        for face in found
    )
    return PortraitFaces((width, height), faces)


class FaceMemo:
    """Portrait faces by sha256; ``path`` (a JSON file) keeps them across processes when given."""

    def __init__(self, path: Path | None = None) -> None:
        self.path = path
        self._stored: dict[str, object] | None = None

    def faces(self, portrait: Path, sha256: str | None = None) -> PortraitFaces:
        digest = sha256 or file_sha256(portrait)
        stored = self._load().get(digest)
        result = _from_json(stored) if isinstance(stored, dict) else None
        if result is None:
            result = _memory.get(digest) or detect_portrait_faces(portrait)
            self._save(digest, result)
        _memory[digest] = result
        return result

    def _load(self) -> dict[str, object]:
        if self._stored is None:
            self._stored = {}
            if self.path is not None and self.path.is_file():
                try:
                    data = json.loads(self.path.read_text())
                    if isinstance(data, dict) and data.get("version") == MEMO_VERSION:
                        self._stored = dict(data.get("portraits", {}))
                except (OSError, ValueError):
                    pass  # a damaged memo only costs a detection
        return self._stored

    def _save(self, digest: str, result: PortraitFaces) -> None:
        stored = self._load()
        stored[digest] = _to_json(result)
        if self.path is None:
            return
        try:  # the memo's folder, not the folder above it: a memo is no reason to create a data dir
            self.path.parent.mkdir(exist_ok=True)
        except FileNotFoundError:
            return  # the detection is kept in this process (_memory) and memoised once the data dir exists
        text = json.dumps({"version": MEMO_VERSION, "portraits": stored})
        files.write_text(self.path, text, fsync=False)  # atomic: a concurrent reader sees the old or the new memo


def _to_json(result: PortraitFaces) -> dict[str, object]:
    return {
        "size": list(result.size),
        "faces": [
            {"box": [f.left, f.top, f.right, f.bottom], "landmarks": np.round(f.landmarks, 2).tolist()}
            for f in result.faces
        ],
    }


def _from_json(data: dict[str, object]) -> PortraitFaces | None:
    try:
        size = data["size"]
        faces = tuple(
            Face(*(int(v) for v in face["box"]), np.asarray(face["landmarks"], dtype=np.float64).reshape(-1, 2))
            for face in data["faces"]  # type: ignore[attr-defined]
        )
        return PortraitFaces((int(size[0]), int(size[1])), faces)  # type: ignore[index]
    except (KeyError, TypeError, ValueError):
        return None
