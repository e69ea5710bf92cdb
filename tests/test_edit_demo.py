"""The demo episode and its deliberately broken variant, each shot "rendered" as its portrait under its
camera move at half size: the report flags exactly the broken variant's three errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from farm.edit.build import EditOutcome, build_edit, new_edit_dir
from farm.edit.checks import Verdict
from farm.edit.retakes import RetakeMode
from tests.edit_shots import render_shot_list_as_camera_moves
from tests.shotlists import REPO

DEMO = REPO / "shots" / "demo"


def edit_of(shot_list: Path, root: Path) -> EditOutcome:
    loaded, output, shots = render_shot_list_as_camera_moves(shot_list, root / "shots")
    _, version = new_edit_dir(root / "edits")
    return build_edit(shots, version, output=output, continuity=loaded.continuity, title=loaded.episode)


@pytest.fixture(scope="module")
def broken(tmp_path_factory: pytest.TempPathFactory) -> EditOutcome:
    return edit_of(DEMO / "broken-continuity.yaml", tmp_path_factory.mktemp("broken"))


@pytest.fixture(scope="module")
def clean(tmp_path_factory: pytest.TempPathFactory) -> EditOutcome:
    return edit_of(DEMO / "episode.yaml", tmp_path_factory.mktemp("clean"))


def flagged(outcome: EditOutcome) -> dict[tuple[str, str], Verdict]:
    return {(r.check, r.subject.label): r.verdict for r in outcome.results if r.flagged}


def test_the_broken_demo_flags_its_gap_its_colour_jump_and_its_wrong_face(broken: EditOutcome) -> None:
    assert flagged(broken) == {
        ("audio_gap", "cut sc01_010 | sc01_020"): Verdict.FAIL,
        ("colour", "cut sc01_010 | sc01_030"): Verdict.WARN,
        ("identity", "marcus in sc02_020"): Verdict.FAIL,
    }
    assert broken.verdict is Verdict.FAIL
    (retake,) = broken.retakes.retakes
    assert (retake.shot_id, retake.mode, retake.checks) == ("sc02_020", RetakeMode.NEW_SEED, ("identity",))


def test_the_broken_demo_report_puts_the_flagged_cuts_first(broken: EditOutcome) -> None:
    report = json.loads(broken.report.json.read_text())

    assert [(cut["before"], cut["after"], cut["verdict"]) for cut in report["cuts"][:2]] == [
        ("sc01_010", "sc01_020", "fail"),
        ("sc01_010", "sc01_030", "warn"),
    ]
    assert report["summary"]["retake"] == ["sc02_020"]


def test_an_edit_version_holds_the_edit_its_timeline_and_its_report(broken: EditOutcome) -> None:
    names = {path.name for path in broken.version_dir.iterdir()}

    assert {"edit.mp4", "edit.otio", "edit.edl", "report.json", "report.html", "report_files"} <= names
    assert not [name for name in names if name.startswith(".")]
    assert broken.assembly.copied == 6 and broken.assembly.frames == 351


def test_the_clean_demo_passes_every_continuity_check_that_matters(clean: EditOutcome) -> None:
    assert clean.verdict is not Verdict.FAIL
    assert not [key for key in flagged(clean) if key[0] in {"identity", "colour", "audio_gap", "audio_click"}]
    assert clean.retakes.retakes == ()
    assert clean.assembly.frames == 356
