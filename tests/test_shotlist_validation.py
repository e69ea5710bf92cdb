"""The shot-list format: what is accepted, and how each mistake is reported (file:line, shot, field)."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import pytest

from farm.catalog import ModelCatalog, Quality
from farm.settings import REPO_ROOT
from farm.shotlist.load import load_shot_list, validate_shot_list
from farm.shotlist.types import CameraMove
from tests.shotlists import DEMO_MEDIA, TEMPLATE, make_project, replace_once

CATALOG = ModelCatalog(REPO_ROOT / "models")


def lines_replaced(line_number: int, new: str) -> Callable[[str], str]:
    def edit(text: str) -> str:
        lines = text.splitlines()
        lines[line_number - 1] = new
        return "\n".join(lines) + "\n"

    return edit


def line_inserted(after: int, new: str) -> Callable[[str], str]:
    def edit(text: str) -> str:
        lines = text.splitlines()
        lines.insert(after, new)
        return "\n".join(lines) + "\n"

    return edit


def line_deleted(line_number: int) -> Callable[[str], str]:
    def edit(text: str) -> str:
        lines = text.splitlines()
        del lines[line_number - 1]
        return "\n".join(lines) + "\n"

    return edit


def replaced(old: str, new: str) -> Callable[[str], str]:
    return lambda text: replace_once(text, old, new)


@dataclass(frozen=True)
class Invalid:
    edit: Callable[[str], str]
    line: int
    field: str
    message: str
    shot: str | None = None
    max_shot_seconds: float = 600.0


INVALID_CASES = {
    "unsupported_version": Invalid(replaced("version: 1", "version: 2"), 1, "version", "2 is not supported"),
    "missing_project": Invalid(line_deleted(2), 1, "project", "missing required field 'project'"),
    "misspelt_top_level_field": Invalid(
        replaced("project: Test Show", "projekt: Test Show"),
        2,
        "projekt",
        "unknown field 'projekt'; did you mean 'project'?",
    ),
    "zero_fps": Invalid(replaced("fps: 25", "fps: 0"), 5, "output.fps", "0 is not above the minimum 0"),
    "fps_not_a_number": Invalid(replaced("fps: 25", "fps: fast"), 5, "output.fps", "expected a number, got 'fast'"),
    "odd_width": Invalid(replaced("width: 480", "width: 481"), 6, "output.width", "481 is not a multiple of 2"),
    "height_too_large": Invalid(
        replaced("height: 832", "height: 8192"), 7, "output.height", "8192 is above the maximum 4096"
    ),
    "unknown_quality": Invalid(
        replaced("quality: preview", "quality: draft"),
        9,
        "defaults.quality",
        "'draft' is not allowed here; use one of preview, final",
    ),
    "negative_seed": Invalid(replaced("seed: 7", "seed: -1"), 10, "defaults.seed", "-1 is below the minimum 0"),
    "missing_portrait": Invalid(
        replaced("media/marcus.jpg", "media/nobody.jpg"),
        13,
        "characters.marcus.image",
        "file 'media/nobody.jpg' does not exist",
    ),
    "portrait_path_escapes_with_dotdot": Invalid(
        replaced("media/marcus.jpg", "../../etc/hosts"),
        13,
        "characters.marcus.image",
        "points outside the shot list's folder",
    ),
    "portrait_absolute_path_outside": Invalid(
        replaced("media/marcus.jpg", "/etc/hostname"),
        13,
        "characters.marcus.image",
        "points outside the shot list's folder",
    ),
    "portrait_is_not_an_image": Invalid(
        replaced("media/marcus.jpg", "media/sc01_dialogue.wav"),
        13,
        "characters.marcus.image",
        "is not a usable portrait",
    ),
    "audio_is_not_audio": Invalid(
        replaced("media/sc01_dialogue.wav", "media/walter.jpg"), 18, "audio_tracks.sc01.file", "is not decodable audio"
    ),
    "unknown_character": Invalid(
        lines_replaced(23, "        character: marcos"), 23, "character", "unknown character 'marcos'", "a"
    ),
    "unknown_track": Invalid(
        replaced("{track: sc01, in: 0,", "{track: sc09, in: 0,"), 24, "audio.track", "unknown audio track 'sc09'", "a"
    ),
    "malformed_timecode": Invalid(
        replaced("in: 0, out: 2.36", "in: '1:2', out: 2.36"),
        24,
        "audio.in",
        "'1:2' is not valid here; write seconds (12.5)",
        "a",
    ),
    "out_before_in": Invalid(
        replaced("in: 0, out: 2.36", "in: 2, out: 1"), 24, "audio.out", "out (1.000 s) is not after in (2.000 s)", "a"
    ),
    "out_past_end_of_track": Invalid(
        replaced("out: 7.68", "out: 99"), 33, "audio.out", "out 99 is past the end of track 'sc01'", "c"
    ),
    "smpte_frame_not_below_fps": Invalid(
        replaced('"00:00:04:14"', '"00:00:04:30"'),
        29,
        "audio.out",
        "frame field 30 is not below the frame rate 25",
        "b",
    ),
    "drop_frame_at_25_fps": Invalid(
        replaced('"00:00:04:14"', '"00:00:04;14"'),
        29,
        "audio.out",
        "00:00:04;14 is drop-frame timecode (';' before the frames), which exists only at 29.97 and 59.94 fps",
        "b",
    ),
    "shot_longer_than_limit": Invalid(
        lambda text: text, 24, "audio.out", "more than the 1 s limit", "a", max_shot_seconds=1.0
    ),
    "duplicate_shot_id": Invalid(replaced("- id: c", "- id: b"), 31, "id", "shot id 'b' is used twice", "b"),
    "continues_unknown_shot": Invalid(
        replaced("continues: a", "continues: zz"), 35, "continues", "unknown shot 'zz'", "c"
    ),
    "continues_itself": Invalid(
        replaced("continues: a", "continues: c"), 35, "continues", "a shot cannot continue itself", "c"
    ),
    "continues_later_shot": Invalid(
        line_inserted(30, "        continues: c"), 31, "continues", "shot 'c' comes later in the edit", "b"
    ),
    "continues_cycle": Invalid(
        line_inserted(26, "        continues: c"), 27, "continues", "'continues' forms a cycle: a -> c -> a", "a"
    ),
    "unknown_camera_move": Invalid(
        replaced("move: push_in", "move: zoom"), 26, "camera.move", "'zoom' is not allowed here", "a"
    ),
    "intensity_over_100_percent": Invalid(
        replaced("intensity: 30%", "intensity: 140%"), 26, "camera.intensity", "intensity 140% is outside 0-100%", "a"
    ),
    "intensity_number_above_one": Invalid(
        replaced("intensity: 30%", "intensity: 40"),
        26,
        "camera.intensity",
        "number 40 is not valid here; write a percentage such as 40%",
        "a",
    ),
    "misspelt_shot_field": Invalid(
        replaced("prompt: A man speaks", "promt: A man speaks"),
        25,
        "promt",
        "unknown field 'promt'; did you mean 'prompt'?",
        "a",
    ),
    "missing_prompt": Invalid(line_deleted(30), 27, "prompt", "missing required field 'prompt'", "b"),
    "numeric_shot_id": Invalid(
        replaced("- id: a", "- id: 010"), 22, "scenes[0].shots[0].id", "expected a string, got number 10"
    ),
    "unknown_model_override": Invalid(
        line_inserted(25, "        overrides: {model: wan-hd}"), 26, "overrides.model", "unknown model 'wan-hd'", "a"
    ),
    "yaml_anchor": Invalid(
        replaced("prompt: A man speaks", "prompt: &p A man speaks"), 25, "", "YAML anchors (&p) are not allowed"
    ),
    "yaml_alias_bomb": Invalid(
        lambda t: "a: &a [x, x]\nb: &b [*a, *a]\nc: [*b, *b]\n", 1, "", "YAML anchors (&a) are not allowed"
    ),
    "yaml_python_tag": Invalid(
        replaced("project: Test Show", "project: !!python/object/apply:os.system [ls]"),
        2,
        "",
        "YAML tag 'tag:yaml.org,2002:python/object/apply:os.system' is not allowed",
    ),
    "yaml_duplicate_key": Invalid(
        line_inserted(25, "        prompt: twice"), 26, "", "duplicate key 'prompt' (first defined on line 25)"
    ),
    "yaml_syntax_error": Invalid(replaced("  quality: preview", "  quality: [preview"), 10, "", "YAML syntax error"),
    "empty_shot_list": Invalid(lambda text: "", 1, "", "the file is empty"),
    "empty_scene": Invalid(
        lambda text: text.split("    shots:")[0] + "    shots: []\n", 21, "scenes[0].shots", "must not be empty"
    ),
}


@pytest.mark.parametrize("case_id", sorted(INVALID_CASES))
def test_invalid_shot_list_is_reported_at_its_line_and_field(tmp_path: Path, case_id: str) -> None:
    case = INVALID_CASES[case_id]
    path = make_project(tmp_path, case.edit(TEMPLATE))
    report = validate_shot_list(path, catalog=CATALOG, max_shot_seconds=case.max_shot_seconds)

    assert not report.ok
    formatted = [finding.format() for finding in report.errors]
    matching = [f for f in report.errors if case.message in f.format()]
    assert matching, f"no error mentions {case.message!r}; got {formatted}"
    finding = matching[0]
    assert (finding.line, finding.field, finding.shot) == (case.line, case.field, case.shot), formatted
    assert finding.file.endswith("ep.yaml")
    assert finding.format().startswith(f"{finding.file}:{case.line}:{finding.column}:")


def test_invalid_cases_cover_at_least_25_distinct_mistakes() -> None:
    assert len(INVALID_CASES) >= 25


def test_template_is_valid_and_typed(tmp_path: Path) -> None:
    shot_list = load_shot_list(make_project(tmp_path), catalog=CATALOG)

    assert [shot.id for shot in shot_list.shots] == ["a", "b", "c"]
    assert shot_list.output.fps == 25
    first, second, third = shot_list.shots
    assert first.camera.move is CameraMove.PUSH_IN and first.camera.intensity == pytest.approx(0.3)
    assert second.camera.move is CameraMove.STATIC
    assert second.audio.start == Fraction(236, 100)
    assert second.audio.end == Fraction(4) + Fraction(14, 25)
    assert third.continues == "a"
    assert shot_list.defaults.quality is Quality.PREVIEW
    assert shot_list.characters["marcus"].image == (tmp_path / "media" / "marcus.jpg").resolve()
    assert first.line == 22


def test_every_error_is_reported_in_one_pass(tmp_path: Path) -> None:
    text = replace_once(TEMPLATE, "fps: 25", "fps: 0")
    text = replace_once(text, "character: walter", "character: nobody")
    text = replace_once(text, "out: 7.68", "out: 99")
    report = validate_shot_list(make_project(tmp_path, text), catalog=CATALOG)

    assert {(f.line, f.field) for f in report.errors} >= {(5, "output.fps"), (28, "character"), (33, "audio.out")}


def test_unused_character_is_a_warning_not_an_error(tmp_path: Path) -> None:
    text = replace_once(TEMPLATE, "audio_tracks:", "  extra:\n    image: media/marcus.jpg\naudio_tracks:")
    report = validate_shot_list(make_project(tmp_path, text), catalog=CATALOG)

    assert report.ok
    assert [w.field for w in report.warnings] == ["characters.extra"]


def test_symlink_leaving_the_project_is_refused(tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    shutil.copy(DEMO_MEDIA / "marcus.jpg", outside / "portrait.jpg")
    project = tmp_path / "project"
    path = make_project(project, replace_once(TEMPLATE, "media/marcus.jpg", "media/link.jpg"))
    (project / "media" / "link.jpg").symlink_to(outside / "portrait.jpg")
    report = validate_shot_list(path, catalog=CATALOG)

    assert any("points outside the shot list's folder" in f.message for f in report.errors)


def test_absolute_path_inside_the_project_is_accepted(tmp_path: Path) -> None:
    absolute = (tmp_path / "media" / "marcus.jpg").resolve()
    path = make_project(tmp_path, replace_once(TEMPLATE, "media/marcus.jpg", str(absolute)))

    assert validate_shot_list(path, catalog=CATALOG).ok


def test_ntsc_rate_and_smpte_timecodes(tmp_path: Path) -> None:
    text = replace_once(TEMPLATE, "fps: 25", "fps: 29.97")
    text = replace_once(text, '"00:00:04:14"', '"00:00:04:15"')
    text = replace_once(text, "in: 4.56", 'in: "00:00:04:15"')
    shot_list = load_shot_list(make_project(tmp_path, text), catalog=CATALOG)

    assert shot_list.output.fps == Fraction(30000, 1001)
    assert shot_list.shots[1].audio.end == Fraction(4 * 30 + 15) / Fraction(30000, 1001)


@pytest.mark.parametrize(("fps", "frame"), [("29.97", (4 * 30 + 15, 30)), ("59.94", (4 * 60 + 15, 60))])
def test_drop_frame_timecodes_at_ntsc_rates(tmp_path: Path, fps: str, frame: tuple[int, int]) -> None:
    text = replace_once(TEMPLATE, "fps: 25", f"fps: {fps}")
    text = replace_once(text, '"00:00:04:14"', '"00:00:04;15"')
    text = replace_once(text, "in: 4.56", 'in: "00:00:04;15"')
    shot_list = load_shot_list(make_project(tmp_path, text), catalog=CATALOG)

    rate = Fraction(frame[1] * 1000, 1001)
    assert shot_list.output.fps == rate
    assert shot_list.shots[1].audio.end == Fraction(frame[0]) / rate
    assert shot_list.shots[2].audio.start == Fraction(frame[0]) / rate


def test_norway_and_sexagesimal_values_are_not_reinterpreted(tmp_path: Path) -> None:
    text = replace_once(TEMPLATE, "project: Test Show", "project: no")
    text = replace_once(text, 'episode: "07"', "episode: 1:05")
    shot_list = load_shot_list(make_project(tmp_path, text), catalog=CATALOG)

    assert (shot_list.project, shot_list.episode) == ("no", "1:05")


def test_demo_shot_list_is_valid() -> None:
    report = validate_shot_list(REPO_ROOT / "shots" / "demo" / "episode.yaml", catalog=CATALOG)

    assert report.ok, [f.format() for f in report.findings]
    shot_list = report.shot_list
    assert len(shot_list.scenes) == 3 and len(shot_list.shots) >= 5
    assert [shot.id for shot in shot_list.shots if shot.two_shot] == ["sc03_010"]
    assert len(shot_list.characters) == 3
    assert len({shot.camera.move for shot in shot_list.shots}) >= 4
    assert any(shot.continues for shot in shot_list.shots)
    assert (REPO_ROOT / "shots" / "demo" / "episode.yaml").read_text().startswith("# yaml-language-server: $schema=")


def test_a_look_of_a_person_whose_portrait_is_someone_else_is_a_located_warning(tmp_path: Path) -> None:
    looks = (
        "  marcus_graded:\n    image: media/marcus_graded.jpg\n    person: marcus\n"  # the same face, graded
        "  marcus_double:\n    image: media/walter.jpg\n    person: marcus\n"  # another face
        "audio_tracks:"
    )
    path = make_project(tmp_path, replace_once(TEMPLATE, "audio_tracks:", looks))
    shutil.copy(DEMO_MEDIA / "marcus_graded.jpg", tmp_path / "media" / "marcus_graded.jpg")

    report = validate_shot_list(path, catalog=CATALOG)

    assert report.ok
    (warning,) = [w for w in report.warnings if w.field.endswith(".image")]  # the others: unused looks
    assert (warning.line, warning.field) == (20, "characters.marcus_double.image")
    assert "'media/walter.jpg' shows another face than 'media/marcus.jpg' (characters.marcus)" in warning.message
    assert "person 'marcus'" in warning.message and "a render cannot fix a wrong portrait" in warning.hint


def test_the_portrait_comparison_follows_the_files_contents_not_their_names(tmp_path: Path) -> None:
    text = replace_once(TEMPLATE, "    image: media/walter.jpg", "    image: media/walter.jpg\n    person: marcus")
    path = make_project(tmp_path, text)
    flagged = validate_shot_list(path, catalog=CATALOG)
    shutil.copy(DEMO_MEDIA / "marcus.jpg", tmp_path / "media" / "walter.jpg")  # now a portrait of marcus

    fixed = validate_shot_list(path, catalog=CATALOG)

    assert [w.field for w in flagged.warnings] == ["characters.walter.image"]
    assert fixed.warnings == ()
