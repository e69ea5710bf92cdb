"""Framing a reference portrait the way a camera operator frames a single, from its face.

A model receives the portrait cropped to the output aspect as a medium close-up: the face box takes a
fixed share of the frame height, the eyes sit on the upper third line (which leaves headroom above the
hair), and the face is set off-centre toward where it looks (look room). The crop always lies inside the
source image: when the image is too small for the ideal crop the crop shrinks (the face is framed tighter)
and is shifted back inside. Framing is pure arithmetic on sizes and a face box, so the plan can compute it
and put it in the cache key without touching pixels.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from PIL import Image

from farm.media.faces import Face

FaceBox = Face
"""The face box framing works from: what ``farm.media.faces.detect_faces`` returns."""

FACE_HEIGHT_FRACTION = 0.26
"""Face box height / frame height for a medium close-up (head and shoulders, some chest)."""
EYE_LINE = 1 / 3
"""The eyes sit on the upper third line of the frame."""
HAIR_ABOVE_BOX = 0.55
"""The top of the head lies this many face-box heights above the detector's box (which starts at the brows)."""
EYES_IN_BOX = 0.38
"""Without landmarks, the eyes are taken this far down the face box."""
LOOK_ROOM_MAX = 0.08
"""At most this share of the frame width the face is set off-centre, away from where it looks."""
LOOK_ROOM_GAIN = 0.25
"""Frame-width shift per unit of head turn (nose offset from the eye midpoint, in eye distances)."""
MAX_UPSCALE = 2.0
"""Upscaling the crop past this factor softens the face visibly: a warning says so."""


@dataclass(frozen=True)
class Crop:
    """A rectangle in source-image pixels: what part of the portrait the output shows."""

    left: int
    top: int
    width: int
    height: int

    @property
    def right(self) -> int:
        return self.left + self.width

    @property
    def bottom(self) -> int:
        return self.top + self.height

    def box(self) -> tuple[int, int, int, int]:
        """``(left, top, right, bottom)``, the order PIL's ``Image.crop`` and ``resize(box=...)`` take."""
        return (self.left, self.top, self.right, self.bottom)

    def contains(self, left: float, top: float, right: float, bottom: float) -> bool:
        return self.left <= left and self.top <= top and right <= self.right and bottom <= self.bottom

    def to_json(self) -> dict[str, int]:
        return {"left": self.left, "top": self.top, "width": self.width, "height": self.height}

    def describe(self) -> str:
        return f"{self.width}x{self.height}+{self.left}+{self.top}"


@dataclass(frozen=True)
class Framing:
    """How one portrait is framed for one output size.

    ``scale`` is output pixels per source pixel (above 1 means upscaling). ``face`` is the face box the
    framing was built on, in source pixels (None for centre or explicit framings without a face).
    ``warnings`` are meant for the person reading the plan, not for stopping the render.
    """

    crop: Crop
    scale: float
    warnings: tuple[str, ...] = ()
    face: Crop | None = None

    def face_in_output(self, output_size: tuple[int, int]) -> tuple[float, float, float, float] | None:
        """The face box ``(left, top, right, bottom)`` in output pixels, for anchoring camera moves."""
        if self.face is None:
            return None
        sx = output_size[0] / self.crop.width
        sy = output_size[1] / self.crop.height
        return (
            (self.face.left - self.crop.left) * sx,
            (self.face.top - self.crop.top) * sy,
            (self.face.right - self.crop.left) * sx,
            (self.face.bottom - self.crop.top) * sy,
        )

    def head_fractions(self) -> tuple[float, float, float, float] | None:
        """The head (face box plus the hair above it) as ``(left, top, right, bottom)`` fractions of the crop.

        Camera moves anchor on it: a push-in ends on it, pans, cranes and the swing keep it in frame.
        """
        if self.face is None:
            return None
        head_top = self.face.top - HAIR_ABOVE_BOX * self.face.height
        return (
            (self.face.left - self.crop.left) / self.crop.width,
            (head_top - self.crop.top) / self.crop.height,
            (self.face.right - self.crop.left) / self.crop.width,
            (self.face.bottom - self.crop.top) / self.crop.height,
        )

    def key(self) -> dict[str, object]:
        """What of the framing changes pixels: the crop, and the face the camera anchors on."""
        return {"crop": self.crop.to_json(), "face": self.face.to_json() if self.face else None}

    def to_json(self) -> dict[str, object]:
        return {
            "crop": self.crop.to_json(),
            "scale": self.scale,
            "face": self.face.to_json() if self.face else None,
            "warnings": list(self.warnings),
        }

    def describe(self) -> str:
        return f"crop {self.crop.describe()} x{self.scale:.2f}"


def choose_face(
    faces: Sequence[FaceBox],
    hint: tuple[float, float] | None = None,
    image_size: tuple[int, int] | None = None,
) -> FaceBox | None:
    """The face a shot is about: the largest, or with a hint the one containing it, else the nearest.

    ``hint`` is ``(x, y)`` in fractions of the image (the shot list's ``face: {x, y}``), so it needs
    ``image_size`` ``(width, height)`` to become pixels. None when there are no faces.
    """
    if not faces:
        return None
    by_size = sorted(faces, key=lambda face: face.area, reverse=True)
    if hint is None:
        return by_size[0]
    if image_size is None:
        raise ValueError("choose_face: a hint in fractions of the image needs image_size")
    x, y = hint[0] * image_size[0], hint[1] * image_size[1]
    for face in by_size:
        if face.left <= x <= face.right and face.top <= y <= face.bottom:
            return face
    return min(by_size, key=lambda face: math.hypot((face.left + face.right) / 2 - x, (face.top + face.bottom) / 2 - y))


def frame_single(image_size: tuple[int, int], face: FaceBox, output_size: tuple[int, int]) -> Framing:
    """A medium close-up of ``face`` in an image of ``image_size``, for an output of ``output_size``."""
    width, height = image_size
    aspect = output_size[0] / output_size[1]
    crop_h = face.height / FACE_HEIGHT_FRACTION
    crop_w = crop_h * aspect
    fit = min(1.0, width / crop_w, height / crop_h)
    crop_w, crop_h = crop_w * fit, crop_h * fit
    eye_x, eye_y = _eyes(face)
    centre_x = eye_x + _look_room(face) * crop_w
    top = eye_y - EYE_LINE * crop_h
    head_top = face.top - HAIR_ABOVE_BOX * face.height
    top = min(top, max(0.0, head_top - 0.02 * crop_h))  # a big face: keep the hair in, at the eye line's cost
    crop = _inside(centre_x - crop_w / 2, top, crop_w, crop_h, image_size)
    face_box = Crop(face.left, face.top, face.width, face.height)
    warnings = _warnings(crop, face_box, output_size)
    if fit < 1.0:
        warnings = (f"portrait {width}x{height} is too small for a medium close-up; framed tighter", *warnings)
    return Framing(crop, output_size[1] / crop.height, warnings, face_box)


def frame_centre(image_size: tuple[int, int], output_size: tuple[int, int]) -> Framing:
    """The largest centred crop of the output aspect: for portraits that show no person."""
    width, height = image_size
    aspect = output_size[0] / output_size[1]
    crop_w, crop_h = min(width, height * aspect), min(height, width / aspect)
    crop = _inside((width - crop_w) / 2, (height - crop_h) / 2, crop_w, crop_h, image_size)
    return Framing(crop, output_size[1] / crop.height, _warnings(crop, None, output_size))


def frame_explicit(crop: Crop, output_size: tuple[int, int], face: FaceBox | None = None) -> Framing:
    """A crop the character gives, kept as is: it wins over the face (validation checks it fits the image)."""
    face_box = Crop(face.left, face.top, face.width, face.height) if face else None
    warnings = _warnings(crop, face_box, output_size)
    aspect_out, aspect_crop = output_size[0] / output_size[1], crop.width / crop.height
    if abs(aspect_crop / aspect_out - 1) > 0.02:
        warnings = (f"crop {crop.describe()} is not the output's aspect; it will be stretched", *warnings)
    return Framing(crop, output_size[1] / crop.height, warnings, face_box)


def frame_portrait(
    image_size: tuple[int, int],
    faces: Sequence[FaceBox],
    output_size: tuple[int, int],
    *,
    hint: tuple[float, float] | None = None,
    crop: Crop | None = None,
    person: bool = True,
) -> Framing:
    """A character's framing: its explicit crop wins, a non-person is centred, else a single of its face.

    A person whose portrait shows no face (validation refuses that, so only a changed file gets here) is
    centred with a warning rather than failing the render.
    """
    face = choose_face(faces, hint, image_size) if person else None
    if crop is not None:
        return frame_explicit(crop, output_size, face)
    if face is None:
        centre = frame_centre(image_size, output_size)
        if not person:
            return centre
        return Framing(centre.crop, centre.scale, ("no face found in the portrait; centre-framed", *centre.warnings))
    framing = frame_single(image_size, face, output_size)
    if len(faces) > 1:
        return Framing(
            framing.crop,
            framing.scale,
            (f"{len(faces)} faces in the portrait; framed {_which(hint)}", *framing.warnings),
            framing.face,
        )
    return framing


def _which(hint: tuple[float, float] | None) -> str:
    return f"the one at the hint ({hint[0]:g}, {hint[1]:g})" if hint else "the largest"


def crop_image(image: np.ndarray, crop: Crop, min_size: tuple[int, int] | None = None) -> np.ndarray:
    """``image`` (H, W, 3) cut to ``crop``; upscaled with Lanczos to at least ``min_size`` (width, height).

    Lanczos keeps a small face's edges sharp where the models' bilinear warps would smear them.
    """
    cut = np.ascontiguousarray(image[crop.top : crop.bottom, crop.left : crop.right])
    if min_size is None or (cut.shape[1] >= min_size[0] and cut.shape[0] >= min_size[1]):
        return cut
    factor = max(min_size[0] / cut.shape[1], min_size[1] / cut.shape[0])
    size = (max(1, round(cut.shape[1] * factor)), max(1, round(cut.shape[0] * factor)))
    return np.asarray(Image.fromarray(cut).resize(size, Image.Resampling.LANCZOS))


def _eyes(face: FaceBox) -> tuple[float, float]:
    """The eyes' midpoint: from the landmarks when there are any, else from the box's proportions."""
    marks = face.landmarks
    if marks is not None and len(marks) >= 48:
        eyes = marks[36:48]
        return float(eyes[:, 0].mean()), float(eyes[:, 1].mean())
    return (face.left + face.right) / 2, face.top + EYES_IN_BOX * face.height


def _look_room(face: FaceBox) -> float:
    """Signed frame-width shift of the crop centre toward where the face looks (positive: to the right).

    The head turn is read from the nose tip's offset from the midpoint between the outer eye corners,
    in eye distances; a frontal face gets none.
    """
    marks = face.landmarks
    if marks is None or len(marks) < 48:
        return 0.0
    left_eye, right_eye, nose = marks[36], marks[45], marks[30]
    eye_distance = float(math.hypot(*(right_eye - left_eye)))
    if eye_distance <= 0:
        return 0.0
    turn = (float(nose[0]) - (left_eye[0] + right_eye[0]) / 2) / eye_distance
    return max(-LOOK_ROOM_MAX, min(LOOK_ROOM_MAX, turn * LOOK_ROOM_GAIN))


def _inside(left: float, top: float, crop_w: float, crop_h: float, image_size: tuple[int, int]) -> Crop:
    """The rectangle in whole pixels, at least 1 px a side, shifted (never resized further) into the image."""
    width, height = image_size
    w = max(1, min(width, round(crop_w)))
    h = max(1, min(height, round(crop_h)))
    x = min(max(0, round(left)), width - w)
    y = min(max(0, round(top)), height - h)
    return Crop(x, y, w, h)


def _warnings(crop: Crop, face: Crop | None, output_size: tuple[int, int]) -> tuple[str, ...]:
    warnings = []
    scale = output_size[1] / crop.height
    if scale > MAX_UPSCALE:
        warnings.append(
            f"the portrait is too small for {output_size[0]}x{output_size[1]}: its crop {crop.describe()} "
            f"is upscaled {scale:.1f}x (over {MAX_UPSCALE:g}x looks soft); use a larger portrait"
        )
    if face is not None and not crop.contains(face.left, face.top, face.right, face.bottom):
        warnings.append(f"the face {face.describe()} does not fit inside the crop {crop.describe()}")
    return tuple(warnings)
