"""Framing a single from the face: medium close-up, eyes on the third line, crop inside the image."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from farm.media.faces import Face, detect_faces
from farm.media.framing import (
    EYE_LINE,
    FACE_HEIGHT_FRACTION,
    Crop,
    choose_face,
    frame_centre,
    frame_explicit,
    frame_single,
)
from farm.media.image import load_rgb

PORTRAITS = Path("/work/shared/media/portraits")
NO_MARKS = np.zeros((0, 2))


def box(left: int, top: int, size: int) -> Face:
    return Face(left, top, left + size, top + size, NO_MARKS)


def inside(crop: Crop, image_size: tuple[int, int]) -> bool:
    return crop.left >= 0 and crop.top >= 0 and crop.right <= image_size[0] and crop.bottom <= image_size[1]


def aspect(crop: Crop) -> float:
    return crop.width / crop.height


@pytest.mark.parametrize("output", [(480, 832), (832, 480), (512, 512)])
@pytest.mark.parametrize("image", [(970, 2204), (2204, 970), (1200, 1200)])
def test_a_small_face_in_a_big_image_gets_a_medium_close_up_with_eyes_on_the_third_line(
    image: tuple[int, int], output: tuple[int, int]
) -> None:
    face = box(image[0] // 2 - 50, image[1] // 4, 100)
    framing = frame_single(image, face, output)
    crop = framing.crop

    assert inside(crop, image)
    assert aspect(crop) == pytest.approx(output[0] / output[1], rel=0.01)
    assert face.height / crop.height == pytest.approx(FACE_HEIGHT_FRACTION, rel=0.02)
    eyes_y = face.top + 0.38 * face.height
    assert (eyes_y - crop.top) / crop.height == pytest.approx(EYE_LINE, abs=0.01)
    assert crop.contains(face.left, face.top - 0.45 * face.height, face.right, face.bottom)  # hair included
    assert framing.scale == pytest.approx(output[1] / crop.height)
    assert framing.face == Crop(face.left, face.top, 100, 100)


def test_a_face_near_the_top_edge_shifts_the_crop_down_but_stays_inside() -> None:
    framing = frame_single((970, 2204), box(20, 5, 120), (480, 832))

    assert framing.crop.top == 0 and framing.crop.left == 0
    assert framing.crop.contains(20, 5, 140, 125)


def test_a_face_filling_the_portrait_is_framed_tighter_with_a_warning() -> None:
    framing = frame_single((512, 512), box(100, 120, 300), (832, 480))

    assert inside(framing.crop, (512, 512))
    assert framing.crop.width == 512
    assert aspect(framing.crop) == pytest.approx(832 / 480, rel=0.01)
    assert any("too small for a medium close-up" in w for w in framing.warnings)


def test_a_small_portrait_is_upscaled_with_a_warning_past_two_times() -> None:
    framing = frame_single((200, 300), box(80, 60, 40), (480, 832))

    assert framing.scale > 2
    assert any("upscaled" in w and "too small for 480x832" in w for w in framing.warnings)
    assert not frame_single((970, 2204), box(400, 300, 200), (480, 832)).warnings


def test_face_in_output_maps_the_box_through_the_crop() -> None:
    framing = frame_single((970, 2204), box(400, 300, 200), (480, 832))
    left, top, right, bottom = framing.face_in_output((480, 832))

    assert 0 < left < right < 480 and 0 < top < bottom < 832
    assert (bottom - top) / 832 == pytest.approx(FACE_HEIGHT_FRACTION, rel=0.02)


def test_choose_face_takes_the_largest_or_the_one_the_hint_points_at() -> None:
    small, large = box(700, 100, 80), box(100, 100, 200)
    size = (1000, 500)

    assert choose_face([], None) is None
    assert choose_face([small, large], None) is large
    assert choose_face([small, large], (0.74, 0.28), size) is small  # inside the small face
    assert choose_face([small, large], (0.9, 0.9), size) is small  # nearest to the small face
    with pytest.raises(ValueError, match="image_size"):
        choose_face([small, large], (0.5, 0.5))


def test_centre_and_explicit_framings() -> None:
    centre = frame_centre((970, 2204), (832, 480))
    assert centre.crop == Crop(0, 822, 970, 560)
    assert centre.face is None

    explicit = frame_explicit(Crop(10, 20, 480, 832), (480, 832))
    assert explicit.crop == Crop(10, 20, 480, 832) and explicit.scale == 1 and not explicit.warnings
    stretched = frame_explicit(Crop(0, 0, 500, 500), (480, 832))
    assert any("stretched" in w for w in stretched.warnings)


def test_the_full_length_photo_is_reframed_on_its_face() -> None:
    """The real 970x2204 full-length portrait: the face at ~18% of the height ends up on the third line."""
    path = next(p for p in sorted(PORTRAITS.glob("*.jpg")) if load_rgb(p).shape[:2] == (2204, 970))
    image = load_rgb(path)[::2, ::2]  # half size: detection is faster, and the geometry is the same
    face = choose_face(detect_faces(image), None)
    assert face is not None
    framing = frame_single((image.shape[1], image.shape[0]), face, (480, 832))
    left, top, right, bottom = framing.face_in_output((480, 832))

    assert 0 < left < right < 480
    assert 0.08 * 832 < top < bottom < 0.6 * 832
    assert framing.crop.height < 0.6 * image.shape[0]  # a close-up, not the whole figure
