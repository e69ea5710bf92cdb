"""The demo episode and its deliberately broken variant, each shot "rendered" as its portrait under its
camera move at half size: the report flags exactly the broken variant's three errors."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import opentimelineio as otio
import pytest

from farm.edit.build import EditOutcome, build_edit, new_edit_dir
from farm.edit.checks import Verdict
from farm.shotlist.types import CheckConfig
from tests.edit_shots import render_shot_list_as_camera_moves
from tests.shotlists import REPO

DEMO = REPO / "shots" / "demo"


def edit_of(shot_list: Path, root: Path) -> EditOutcome:
    """The edit of ``shot_list`` rendered as camera moves, which do not talk: lip sync is left out (the demo
    rendered by previz checks it, tests/test_demo_end_to_end.py)."""
    loaded, output, shots = render_shot_list_as_camera_moves(shot_list, root / "shots")
    version = new_edit_dir(root / "edits", 1)
    checks = {**loaded.continuity.checks, "lip_sync": CheckConfig(enabled=False)}
    continuity = replace(loaded.continuity, checks=checks)
    return build_edit(shots, version, output=output, continuity=continuity, title=loaded.episode)


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


def test_the_wrong_face_comes_from_its_portrait_so_it_is_not_retaken_and_the_report_says_fix_it(
    broken: EditOutcome,
) -> None:
    report = json.loads(broken.report.json.read_text())

    assert broken.retakes.retakes == ()  # a new seed cannot fix a wrong portrait
    (entry,) = broken.retakes.not_retaken
    assert (entry.shot_id, entry.check) == ("sc02_020", "identity")
    assert "walter.jpg is itself another face" in entry.reason and "characters.marcus_double.image" in entry.reason
    assert report["retakes"]["not_retaken"] == [entry.to_json()]
    assert report["summary"]["retake"] == []
    assert "fix characters.marcus_double.image" in broken.report.html.read_text()


def test_the_broken_demo_report_puts_the_flagged_cuts_first_and_shows_the_wrong_face_at_its_cuts(
    broken: EditOutcome,
) -> None:
    report = json.loads(broken.report.json.read_text())

    flagged_cuts = {(cut["before"], cut["after"]): cut for cut in report["cuts"] if cut["verdict"] != "pass"}
    assert [(cut["before"], cut["after"], cut["verdict"]) for cut in report["cuts"][:2]] == [
        ("sc01_010", "sc01_020", "fail"),
        ("sc02_010", "sc02_020", "fail"),  # into the wrong face...
    ]
    assert flagged_cuts[("sc02_020", "sc02_030")]["verdict"] == "fail"  # ...and out of it
    for pair in (("sc02_010", "sc02_020"), ("sc02_020", "sc02_030")):
        assert [r["check"] for r in flagged_cuts[pair]["results"] if r["verdict"] != "pass"] == ["identity"]
    assert flagged_cuts[("sc01_010", "sc01_030")]["verdict"] == "warn"
    assert report["summary"]["fail"] == 2  # the wrong face counts once, however many cuts show it


def test_an_edit_version_holds_the_edit_its_timeline_and_its_report(broken: EditOutcome) -> None:
    names = {path.name for path in broken.version_dir.iterdir()}

    assert {"edit.mp4", "edit.otio", "edit.edl", "edit.xml", "edit.aaf", "media", "report.json", "report.html"} <= names
    assert "report_files" in names
    assert not [name for name in names if name.startswith(".")]
    assert broken.assembly.copied == 6 and broken.assembly.frames == 351


@pytest.mark.parametrize(("name", "adapter"), [("edit.xml", "fcp_xml"), ("edit.aaf", "AAF"), ("edit.edl", "cmx_3600")])
def test_the_demo_reads_back_from_each_nle_file_with_its_shots_ranges_and_findings(
    broken: EditOutcome, name: str, adapter: str
) -> None:
    own = otio.adapters.read_from_file(str(broken.timeline.otio))
    shots = list(own.video_tracks()[0].find_clips())
    options = {"rate": float(broken.assembly.fps)} if adapter == "cmx_3600" else {}

    timeline = otio.adapters.read_from_file(str(broken.version_dir / name), adapter_name=adapter, **options)

    video = list(timeline.video_tracks()[0].find_clips())
    assert [clip.name for clip in video] == [clip.name for clip in shots]
    assert [clip.source_range.duration.value for clip in video] == [clip.source_range.duration.value for clip in shots]
    record = [clip.range_in_parent().start_time.value for clip in shots]
    if adapter == "cmx_3600":  # record timecode from 01:00:00:00: the reader offsets the track by it
        assert timeline.video_tracks()[0].source_range.start_time.value == -3600 * float(broken.assembly.fps)
    else:
        assert [clip.range_in_parent().start_time.value for clip in video] == record
    if adapter != "cmx_3600":  # the EDL's markers are LOC lines, below
        found = {(clip.name, marker.name.split(":")[0]) for clip in video for marker in clip.markers}
        expected = {(clip.name, marker.name) for clip in shots for marker in clip.markers}
        assert found == expected and any(check == "identity" for _, check in found)
    if adapter == "cmx_3600":
        text = (broken.version_dir / name).read_text()
        assert all(len(line) <= 80 for line in text.splitlines())
        assert "IDENTITY" in text and "* LOC: 01:00:" in text


def test_the_clean_demo_passes_every_continuity_check_that_matters(clean: EditOutcome) -> None:
    assert clean.verdict is not Verdict.FAIL
    assert not [key for key in flagged(clean) if key[0] in {"identity", "colour", "audio_gap", "audio_click"}]
    assert clean.retakes.retakes == ()
    assert clean.assembly.frames == 386
