"""Framing in the shot list, the plan and the camera: face hints, explicit crops, no face, anchored moves."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from farm.avatar.camera import camera_trajectory
from farm.media.face_memo import FaceMemo
from farm.media.framing import Crop
from farm.plan import plan_shot_list
from farm.shotlist.load import load_shot_list, validate_shot_list
from farm.shotlist.types import CameraMove, CameraSpec
from tests.shotlists import TEMPLATE, make_project, replace_once
from tests.test_plan import CATALOG

MARCUS = "  marcus:\n    image: media/marcus.jpg\n"


def with_marcus(tmp_path: Path, extra: str, image: str = "media/marcus.jpg") -> Path:
    text = replace_once(TEMPLATE, MARCUS, f"  marcus:\n    image: {image}\n{extra}")
    return make_project(tmp_path, text)


def blank_portrait(tmp_path: Path) -> str:
    (tmp_path / "media").mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.full((300, 200, 3), 128, np.uint8)).save(tmp_path / "media" / "wall.png")
    return "media/wall.png"


def test_a_portrait_without_a_face_is_a_located_error_naming_the_file_and_the_character(tmp_path: Path) -> None:
    report = validate_shot_list(with_marcus(tmp_path, "", blank_portrait(tmp_path)), catalog=CATALOG)

    (error,) = [f for f in report.errors if "no face" in f.message]
    assert (error.line, error.field) == (13, "characters.marcus.image")
    assert "'media/wall.png' (character marcus)" in error.message
    assert "face: none" in error.hint and "crop" in error.hint


def test_face_none_and_an_explicit_crop_need_no_face(tmp_path: Path) -> None:
    wall = blank_portrait(tmp_path)
    not_a_person = validate_shot_list(with_marcus(tmp_path, "    face: none\n", wall), catalog=CATALOG)
    cropped = with_marcus(tmp_path / "b", "    crop: {left: 0, top: 0, width: 100, height: 173}\n", wall)
    (tmp_path / "b" / "media" / "wall.png").write_bytes((tmp_path / "media" / "wall.png").read_bytes())

    assert not_a_person.ok, [f.format() for f in not_a_person.findings]
    assert validate_shot_list(cropped, catalog=CATALOG).ok


def test_a_crop_past_the_image_is_a_located_error(tmp_path: Path) -> None:
    path = with_marcus(tmp_path, "    crop: {left: 100, top: 0, width: 480, height: 600}\n")

    (error,) = validate_shot_list(path, catalog=CATALOG).errors
    assert (error.line, error.field) == (14, "characters.marcus.crop.width")
    assert "reaches 580 px, past the 480 px width of 'media/marcus.jpg' (480x832)" in error.message


def test_the_plan_carries_the_framing_and_keys_on_it(tmp_path: Path) -> None:
    memo = tmp_path / "faces.json"
    faced = plan_shot_list(load_shot_list(with_marcus(tmp_path / "a", ""), catalog=CATALOG), CATALOG, face_memo=memo)
    crop = "    crop: {left: 0, top: 0, width: 240, height: 416}\n"
    cropped = plan_shot_list(load_shot_list(with_marcus(tmp_path / "b", crop), catalog=CATALOG), CATALOG)

    task = faced.tasks[0]
    assert task.framing is not None and task.framing.face is not None
    assert task.framing.crop.contains(task.framing.face.left, task.framing.face.top, *task.framing.face.box()[2:])
    assert cropped.tasks[0].framing.crop == Crop(0, 0, 240, 416)
    assert cropped.tasks[0].cache_key != task.cache_key
    assert faced.to_json()["shots"][0]["framing"]["crop"] == task.framing.crop.to_json()
    stored = json.loads(memo.read_text())
    assert task.reference_sha256 in stored["portraits"]
    again = FaceMemo(memo)._load()[task.reference_sha256]
    assert again["faces"][0]["box"] == list(task.framing.face.box())


@pytest.mark.parametrize(
    "move", [CameraMove.PAN_LEFT, CameraMove.PAN_RIGHT, CameraMove.CRANE_UP, CameraMove.CRANE_DOWN, CameraMove.SWING]
)
@pytest.mark.parametrize("intensity", [0.3, 1.0])
def test_anchored_moves_keep_the_head_in_frame_at_every_intensity(move: CameraMove, intensity: float) -> None:
    head = (0.30, 0.05, 0.62, 0.45)  # near the top edge, as in a full-length photo framed from the face
    windows = camera_trajectory(CameraSpec(move, intensity), 40, aspect=480 / 832, seed=3, face=head)
    free = camera_trajectory(CameraSpec(move, intensity), 40, aspect=480 / 832, seed=3)

    for window in windows:
        half = 0.5 / window.zoom
        left, top = 0.5 + window.offset_x - half, 0.5 + window.offset_y - half
        right, bottom = left + 2 * half, top + 2 * half
        assert left <= head[0] and head[2] <= right and top <= head[1] and head[3] <= bottom, window
        assert left >= -1e-9 and top >= -1e-9 and right <= 1 + 1e-9 and bottom <= 1 + 1e-9, window
    assert [w.zoom for w in windows] == [w.zoom for w in free]  # the move is kept, only shifted


def test_a_push_in_ends_on_the_face() -> None:
    head = (0.35, 0.10, 0.65, 0.45)
    windows = camera_trajectory(CameraSpec(CameraMove.PUSH_IN, 1.0), 30, aspect=480 / 832, face=head)

    assert (windows[0].offset_x, windows[0].offset_y) == (0.0, 0.0)
    last = windows[-1]
    half = 0.5 / last.zoom
    assert last.offset_x == pytest.approx(0.0, abs=1e-9)
    assert last.offset_y == pytest.approx(max(-(0.5 - half), (head[1] + head[3]) / 2 - 0.5))


def test_two_faces_the_hint_picks_the_right_hand_one(tmp_path: Path) -> None:
    """A real two-shot portrait (marcus | walter side by side): the largest by default, the hinted one on ask."""
    from farm.media.image import load_rgb
    from tests.shotlists import DEMO_MEDIA

    make_project(tmp_path)
    pair = np.concatenate([load_rgb(DEMO_MEDIA / "marcus.jpg"), load_rgb(DEMO_MEDIA / "walter.jpg")], axis=1)
    Image.fromarray(pair).save(tmp_path / "media" / "pair.png")
    hinted = with_marcus(tmp_path, "    face: {x: 0.75, y: 0.3}\n", "media/pair.png")

    (task, *_) = plan_shot_list(load_shot_list(hinted, catalog=CATALOG), CATALOG).tasks
    assert task.framing.face.left >= 480  # walter's face, in the right half
    assert task.framing.crop.left >= 480 - task.framing.crop.width // 2
    assert "2 faces in the portrait; framed the one at the hint (0.75, 0.3)" in task.framing.warnings
