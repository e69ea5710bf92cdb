"""Camera moves, measured on synthetic images: where content goes, how big it gets, what stays fixed."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from farm.avatar.camera import (
    CAMERA_MOVES,
    camera_prompt_phrase,
    camera_trajectory,
    render_camera_video,
)
from farm.shotlist.types import CameraMove, CameraSpec

WIDTH, HEIGHT, FRAMES = 96, 160, 25


def disc_image(size: int = 400, radius: int = 40) -> np.ndarray:
    """A white disc in the middle of a black portrait-shaped image, with texture so zooms are visible."""
    height = int(size * HEIGHT / WIDTH)
    yy, xx = np.mgrid[0:height, 0:size]
    image = np.zeros((height, size, 3), np.uint8)
    image[(xx - size / 2) ** 2 + (yy - height / 2) ** 2 < radius**2] = 255
    return image


def frames_of(move: CameraMove, intensity: float, image: np.ndarray | None = None, seed: int = 0) -> list[np.ndarray]:
    source = disc_image() if image is None else image
    return list(render_camera_video(source, CameraSpec(move, intensity), FRAMES, WIDTH, HEIGHT, seed))


def subject_area(frame: np.ndarray) -> int:
    return int((frame[..., 0] > 127).sum())


def subject_centre(frame: np.ndarray) -> tuple[float, float]:
    ys, xs = np.nonzero(frame[..., 0] > 127)
    return float(xs.mean()), float(ys.mean())


def test_push_in_enlarges_subject_over_time() -> None:
    areas = [subject_area(frame) for frame in frames_of(CameraMove.PUSH_IN, 1.0)]

    assert areas[-1] > 2.0 * areas[0]  # zoom 1.0 -> 1.5 scales area by 2.25
    assert all(later >= earlier - 2 for earlier, later in itertools.pairwise(areas))


def test_push_out_shrinks_subject_over_time() -> None:
    areas = [subject_area(frame) for frame in frames_of(CameraMove.PUSH_OUT, 1.0)]

    assert areas[0] > 2.0 * areas[-1]


def test_pan_left_moves_image_content_right() -> None:
    xs = [subject_centre(frame)[0] for frame in frames_of(CameraMove.PAN_LEFT, 1.0)]

    assert xs[-1] - xs[0] > 0.2 * WIDTH


def test_pan_right_moves_image_content_left() -> None:
    xs = [subject_centre(frame)[0] for frame in frames_of(CameraMove.PAN_RIGHT, 1.0)]

    assert xs[0] - xs[-1] > 0.2 * WIDTH


def test_crane_up_moves_image_content_down() -> None:
    ys = [subject_centre(frame)[1] for frame in frames_of(CameraMove.CRANE_UP, 1.0)]

    assert ys[-1] - ys[0] > 0.2 * HEIGHT


def test_crane_down_moves_image_content_up() -> None:
    ys = [subject_centre(frame)[1] for frame in frames_of(CameraMove.CRANE_DOWN, 1.0)]

    assert ys[0] - ys[-1] > 0.2 * HEIGHT


@pytest.mark.parametrize("move", list(CameraMove))
def test_intensity_zero_equals_static(move: CameraMove) -> None:
    static = frames_of(CameraMove.STATIC, 0.5)
    still = frames_of(move, 0.0)

    assert all(np.array_equal(a, b) for a, b in zip(static, still, strict=True))


def test_moves_ease_in_and_out() -> None:
    windows = camera_trajectory(CameraSpec(CameraMove.PUSH_IN, 1.0), 101, aspect=WIDTH / HEIGHT)
    zooms = np.array([window.zoom for window in windows])
    steps = np.diff(zooms)

    assert steps[0] < 0.1 * steps.max() and steps[-1] < 0.1 * steps.max()
    assert zooms[0] == 1.0 and zooms[-1] == pytest.approx(1.5)


def test_swing_is_seed_deterministic_and_bounded() -> None:
    spec = CameraSpec(CameraMove.SWING, 1.0)
    first = camera_trajectory(spec, 200, aspect=WIDTH / HEIGHT, seed=3)
    again = camera_trajectory(spec, 200, aspect=WIDTH / HEIGHT, seed=3)
    other = camera_trajectory(spec, 200, aspect=WIDTH / HEIGHT, seed=4)

    assert first == again
    assert first != other
    assert max(abs(w.offset_x) for w in first) <= 0.03 + 1e-9
    assert max(abs(w.roll_degrees) for w in first) <= 2.0 + 1e-9
    assert max(abs(w.offset_x) for w in first) > 0.005  # it does move


@pytest.mark.parametrize("move", list(CameraMove))
def test_no_move_reveals_an_empty_corner(move: CameraMove) -> None:
    white = np.full((HEIGHT * 3, WIDTH * 3, 3), 255, np.uint8)
    frames = list(render_camera_video(white, CameraSpec(move, 1.0), 60, WIDTH, HEIGHT, seed=11))

    assert min(int(frame.min()) for frame in frames) > 200


def test_every_move_has_a_prompt_phrase_and_a_trajectory() -> None:
    assert set(CAMERA_MOVES) == set(CameraMove)
    assert "pushes in" in camera_prompt_phrase(CameraSpec(CameraMove.PUSH_IN, 0.4))
    assert camera_prompt_phrase(CameraSpec(CameraMove.PUSH_IN, 0.0)) == camera_prompt_phrase(
        CameraSpec(CameraMove.STATIC)
    )
