"""Two-shots: a second character in frame with its own dialogue, from the shot list to the plan."""

from __future__ import annotations

from pathlib import Path

import pytest

from farm.catalog import ModelCatalog, Quality
from farm.plan import ShotTask, plan_shot_list
from farm.settings import REPO_ROOT
from farm.shotlist.load import load_shot_list, validate_shot_list
from farm.shotlist.types import LAYOUT_FACES, TwoShotLayout
from tests.shotlists import TEMPLATE, make_project, replace_once

CATALOG = ModelCatalog(REPO_ROOT / "models")

SINGLE_B = """\
      - id: b
        character: walter
        audio: {track: sc01, in: "00:00:02.360", out: "00:00:04:14"}
        prompt: Another man answers
"""
TWO_SHOT_B = (
    SINGLE_B
    + """\
        two_shot:
          character: marcus
          audio: {track: sc01, in: 0, out: 2.2}
          layout: side_by_side
"""
)
TWO_SHOT = replace_once(TEMPLATE, SINGLE_B, TWO_SHOT_B)
"""The test template with shot b a two-shot: walter (the shot's audio) and marcus, speaking over him."""
TWO_SHOT_LINE = 31
"""The line of ``two_shot:`` in TWO_SHOT."""


def edited(old: str, new: str) -> str:
    return replace_once(TWO_SHOT, old, new)


def test_a_two_shot_is_typed_with_its_second_speaker_and_layout(tmp_path: Path) -> None:
    assert TWO_SHOT.splitlines()[TWO_SHOT_LINE - 1].strip() == "two_shot:"
    shot_list = load_shot_list(make_project(tmp_path, TWO_SHOT), catalog=CATALOG)
    a, b, c = shot_list.shots

    assert a.two_shot is None and c.two_shot is None
    assert b.two_shot is not None
    assert b.two_shot.character == "marcus"
    assert (b.two_shot.audio.track, float(b.two_shot.audio.start), float(b.two_shot.audio.end)) == ("sc01", 0.0, 2.2)
    assert b.two_shot.layout is TwoShotLayout.SIDE_BY_SIDE
    assert b.two_shot.faces == LAYOUT_FACES[TwoShotLayout.SIDE_BY_SIDE]


def test_given_face_regions_replace_the_layouts(tmp_path: Path) -> None:
    text = edited(
        "layout: side_by_side", "layout: over_the_shoulder\n          faces: [[0, 0.4, 0.45, 1], [0.55, 0, 1, 0.6]]"
    )
    shot = load_shot_list(make_project(tmp_path, text), catalog=CATALOG).shots[1]

    assert shot.two_shot is not None and shot.two_shot.layout is TwoShotLayout.OVER_THE_SHOULDER
    assert shot.two_shot.faces == ((0.0, 0.4, 0.45, 1.0), (0.55, 0.0, 1.0, 0.6))


INVALID = {
    "missing_second_character": (
        edited("          character: marcus\n", ""),
        TWO_SHOT_LINE + 1,
        "two_shot.character",
        "missing required field 'character'",
    ),
    "second_character_is_the_first": (
        edited("          character: marcus\n", "          character: walter\n"),
        TWO_SHOT_LINE + 1,
        "two_shot.character",
        "the two-shot's second character is 'walter', the shot's own character",
    ),
    "unknown_second_character": (
        edited("          character: marcus\n", "          character: marcos\n"),
        TWO_SHOT_LINE + 1,
        "two_shot.character",
        "unknown character 'marcos'",
    ),
    "unknown_second_track": (
        edited("{track: sc01, in: 0, out: 2.2}", "{track: sc02, in: 0, out: 2.2}"),
        TWO_SHOT_LINE + 2,
        "two_shot.audio.track",
        "unknown audio track 'sc02'",
    ),
    "second_audio_of_another_length": (
        edited("out: 2.2}", "out: 2.0}"),
        TWO_SHOT_LINE + 2,
        "two_shot.audio.out",
        "the second speaker's audio lasts 2.000 s, the shot's audio 2.200 s",
    ),
    "second_audio_past_the_track": (
        edited("{track: sc01, in: 0, out: 2.2}", "{track: sc01, in: 8, out: 10.2}"),
        TWO_SHOT_LINE + 2,
        "two_shot.audio.out",
        "out 10.2 is past the end of track 'sc01'",
    ),
    "unknown_layout": (
        edited("layout: side_by_side", "layout: split_screen"),
        TWO_SHOT_LINE + 3,
        "two_shot.layout",
        "'split_screen' is not allowed here",
    ),
    "overlapping_faces": (
        edited("layout: side_by_side", "layout: side_by_side\n          faces: [[0, 0, 0.6, 1], [0.4, 0, 1, 1]]"),
        TWO_SHOT_LINE + 4,
        "two_shot.faces",
        "the two faces' regions [0, 0, 0.6, 1] and [0.4, 0, 1, 1] overlap",
    ),
    "empty_face_region": (
        edited("layout: side_by_side", "layout: side_by_side\n          faces: [[0.5, 0, 0.2, 1], [0.5, 0, 1, 1]]"),
        TWO_SHOT_LINE + 4,
        "two_shot.faces[0]",
        "face region [0.5, 0, 0.2, 1] is empty",
    ),
    "face_region_outside_the_frame": (
        edited("layout: side_by_side", "layout: side_by_side\n          faces: [[0, 0, 0.5, 1], [0.5, 0, 1.5, 1]]"),
        TWO_SHOT_LINE + 4,
        "two_shot.faces[1][2]",
        "1.5 is above the maximum 1",
    ),
}


@pytest.mark.parametrize("case_id", sorted(INVALID))
def test_a_wrong_two_shot_is_reported_at_its_line_and_field_with_a_fix(tmp_path: Path, case_id: str) -> None:
    text, line, field, message = INVALID[case_id]
    report = validate_shot_list(make_project(tmp_path, text), catalog=CATALOG)

    assert report.shot_list is None
    matching = [f for f in report.errors if f.field == field and message in f.message]
    assert matching, [str(f) for f in report.errors]
    finding = matching[0]
    assert (finding.line, finding.shot) == (line, "b"), str(finding)
    assert finding.column > 0 and finding.hint


def plan_of(tmp_path: Path, text: str) -> list[ShotTask]:
    shot_list = load_shot_list(make_project(tmp_path, text), catalog=CATALOG)
    return list(plan_shot_list(shot_list, CATALOG, quality=Quality.PREVIEW).tasks)


def test_the_plan_cuts_one_sample_exact_slice_per_speaker_and_lays_out_their_faces(tmp_path: Path) -> None:
    task = plan_of(tmp_path, TWO_SHOT)[1]

    assert task.two_shot is not None
    first, second = task.two_shot.speakers
    assert (first.character_id, second.character_id) == ("walter", "marcus")
    assert first.audio == task.audio and first.reference_image == task.reference_image
    assert second.audio.track_id == "sc01" and second.audio.start_sample == 0
    assert first.audio.end_sample - first.audio.start_sample == second.audio.end_sample - second.audio.start_sample
    assert first.audio.end_sample - first.audio.start_sample == task.frames * 16_000 // 25
    assert (first.region, second.region) == LAYOUT_FACES[TwoShotLayout.SIDE_BY_SIDE]
    assert ShotTask.from_json(task.to_json()) == task
    assert task.to_json()["two_shot"]["speakers"][1]["audio"]["samples"] == second.audio.end_sample


def test_every_part_of_a_two_shot_is_in_its_key_and_single_shots_keep_theirs(tmp_path: Path) -> None:
    single = plan_of(tmp_path / "single", TEMPLATE)
    two = plan_of(tmp_path / "two", TWO_SHOT)
    variants = {
        "second audio": edited("in: 0, out: 2.2}", "in: 0.1, out: 2.3}"),
        "layout": edited("layout: side_by_side", "layout: over_the_shoulder"),
        "regions": edited("layout: side_by_side", "faces: [[0, 0, 0.4, 1], [0.6, 0, 1, 1]]"),
        "second character": edited("          character: marcus\n", "          character: marcus\n").replace(
            "  walter:\n    image: media/walter.jpg", "  walter:\n    image: media/marcus.jpg"
        ),
    }

    assert [t.cache_key for t in single if t.shot_id != "b"] == [t.cache_key for t in two if t.shot_id != "b"]
    assert two[1].cache_key != single[1].cache_key
    for index, (name, text) in enumerate(variants.items()):
        assert plan_of(tmp_path / str(index), text)[1].cache_key != two[1].cache_key, name
