"""Faces with weights that ship inside pip packages: dlib's HOG detector, 68-point landmarks, 128-d identity.

The model files come from the ``face-recognition-models`` package. Its ``__init__`` imports
``pkg_resources`` (gone from recent setuptools), so the files are located with ``find_spec`` without
importing the package. Models load lazily, once per process.
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from farm.digests import file_sha256
from farm.errors import MediaError
from farm.media.image import load_rgb

SAME_PERSON_DISTANCE = 0.6
"""dlib's published threshold: descriptors closer than this are the same person."""
MIN_FACE_DETECTION_HEIGHT = 400
"""Below this image height dlib's HOG detector is run on a 2x upsampled image (it needs ~80 px faces)."""
PORTRAIT_DETECTION_SIDE = 1024
"""A portrait is searched for its face at most this large on its longest side: faster, and as sure."""


@dataclass(frozen=True)
class Face:
    left: int
    top: int
    right: int
    bottom: int
    landmarks: np.ndarray
    """(68, 2) float (x, y) in iBUG-300W order: jaw 0-16, brows 17-26, nose 27-35, eyes 36-47, mouth 48-67."""

    @property
    def width(self) -> int:
        return self.right - self.left

    @property
    def height(self) -> int:
        return self.bottom - self.top

    @property
    def area(self) -> int:
        return max(0, self.width) * max(0, self.height)


def models_dir() -> Path:
    spec = importlib.util.find_spec("face_recognition_models")
    if spec is None or not spec.submodule_search_locations:
        raise MediaError("the face-recognition-models package is not installed; pip install face-recognition-models")
    return Path(next(iter(spec.submodule_search_locations))) / "models"


@cache
def _detector() -> Any:
    import dlib

    return dlib.get_frontal_face_detector()


@cache
def _landmark_predictor() -> Any:
    import dlib

    return dlib.shape_predictor(str(models_dir() / "shape_predictor_68_face_landmarks.dat"))


@cache
def _encoder() -> Any:
    import dlib

    return dlib.face_recognition_model_v1(str(models_dir() / "dlib_face_recognition_resnet_model_v1.dat"))


def preload_face_models() -> None:
    """Load the detector and the landmark predictor now, so a worker's first shot doesn't pay for it."""
    _detector()
    _landmark_predictor()


def detect_faces(image: np.ndarray, upsample: int = 0) -> list[Face]:
    """Faces in an (H, W, 3) uint8 RGB image, largest first, each with its 68 landmarks."""
    pixels = np.ascontiguousarray(image)  # dlib silently finds nothing in strided arrays
    faces = []
    for box in _detector()(pixels, upsample):
        shape = _landmark_predictor()(pixels, box)
        points = np.array([(shape.part(i).x, shape.part(i).y) for i in range(68)], dtype=np.float64)
        faces.append(Face(box.left(), box.top(), box.right(), box.bottom(), points))
    return sorted(faces, key=lambda face: face.area, reverse=True)


def face_descriptor(image: np.ndarray, face: Face) -> np.ndarray:
    """The 128-d identity embedding of ``face``; Euclidean distance < 0.6 means the same person."""
    import dlib

    pixels = np.ascontiguousarray(image)
    box = dlib.rectangle(face.left, face.top, face.right, face.bottom)
    shape = _landmark_predictor()(pixels, box)
    return np.asarray(_encoder().compute_face_descriptor(pixels, shape), dtype=np.float64)


def identity_distance(first: np.ndarray, second: np.ndarray) -> float:
    return float(np.linalg.norm(first - second))


def image_identity(image: np.ndarray) -> np.ndarray | None:
    """The identity descriptor of the largest face in ``image``; None when no face is found."""
    upsample = 1 if image.shape[0] < MIN_FACE_DETECTION_HEIGHT else 0
    found = detect_faces(image, upsample=upsample)
    return face_descriptor(image, found[0]) if found else None


_portrait_identities: dict[str, np.ndarray | None] = {}


def portrait_identity(path: Path) -> np.ndarray | None:
    """The identity of the portrait at ``path`` (its largest face); None when it shows no face.

    Memoised by the file's sha256, not its path: validating a shot list again, or checking many shots
    of one character, reads each portrait's face once per process, and an edited file is read afresh.
    """
    digest = file_sha256(path)
    if digest not in _portrait_identities:
        image = load_rgb(path)
        longest = max(image.shape[:2])
        if longest > PORTRAIT_DETECTION_SIDE:
            scale = PORTRAIT_DETECTION_SIDE / longest
            size = (round(image.shape[1] * scale), round(image.shape[0] * scale))
            image = np.asarray(Image.fromarray(image).resize(size))
        _portrait_identities[digest] = image_identity(image)
    return _portrait_identities[digest]
