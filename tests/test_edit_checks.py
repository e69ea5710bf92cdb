"""Each continuity check on a crafted case that must pass and one that must fail; verdicts and config."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from farm.edit.assemble import AssemblyResult, assemble_edit
from farm.edit.checks import CHECKS, CheckResult, Verdict, run_checks
from farm.edit.timeline import EditShot
from farm.errors import UsageError
from farm.media.image import load_rgb
from farm.shotlist.types import (
    CameraMove,
    CameraSpec,
    CheckConfig,
    CheckPolicy,
    ContinuityConfig,
    OutputSpec,
    UnmeasuredPolicy,
)
from tests.edit_shots import (
    FPS,
    SAMPLES_PER_FRAME,
    edit_shot,
    portrait_frames,
    solid_frames,
    synthetic_edit,
    tone,
    warm_shift,
    write_frames,
    write_track,
)
from tests.shotlists import DEMO_MEDIA, REPO

OUTPUT = OutputSpec(FPS, 160, 96)


def only(*names: str, **overrides: CheckConfig) -> ContinuityConfig:
    """A config enabling just ``names`` (with optional per-check overrides)."""
    checks = {check.name: CheckConfig(enabled=check.name in names) for check in CHECKS}
    checks.update(overrides)
    return ContinuityConfig(checks=checks)


def check(
    shots: list[EditShot], out: Path, name: str, output: OutputSpec = OUTPUT, **overrides: CheckConfig
) -> tuple[AssemblyResult, list[CheckResult]]:
    assembly = assemble_edit(shots, out, output=output)
    return assembly, run_checks(shots, assembly, only(name, **overrides))


def verdicts(results: list[CheckResult]) -> dict[str, Verdict]:
    return {result.subject.label: result.verdict for result in results}


def test_every_registered_check_is_a_name_the_shot_list_accepts() -> None:
    schema = json.loads((REPO / "schemas" / "shotlist.schema.json").read_text())
    names = schema["properties"]["continuity"]["properties"]["checks"]["propertyNames"]["enum"]

    assert [check.name for check in CHECKS] == names


# -- identity ---------------------------------------------------------------------------------------

PORTRAIT = OutputSpec(FPS, 240, 416)


def portrait_shot(
    root: Path, shot_id: str, image: np.ndarray, move: CameraMove, track: Path, start: int, **kw
) -> EditShot:
    frames = portrait_frames(image, CameraSpec(move, 0.3), 25, 240, 416)
    video = write_frames(root / f"{shot_id}.mp4", [frames], 25, width=240, height=416)
    return edit_shot(shot_id, video, 25, track, start, **kw)


def test_identity_passes_the_same_face_and_fails_another_face_under_the_same_person(tmp_path: Path) -> None:
    marcus, walter = load_rgb(DEMO_MEDIA / "marcus.jpg"), load_rgb(DEMO_MEDIA / "walter.jpg")
    track = write_track(tmp_path / "t.wav", tone(4.0))
    shots = [
        portrait_shot(
            tmp_path,
            "m1",
            marcus,
            CameraMove.PUSH_IN,
            track,
            0,
            character="marcus",
            reference=DEMO_MEDIA / "marcus.jpg",
        ),
        portrait_shot(tmp_path, "m2", marcus, CameraMove.PAN_LEFT, track, 16_000, character="marcus"),
        portrait_shot(tmp_path, "w1", walter, CameraMove.STATIC, track, 32_000, character="marcus_b", person="marcus"),
    ]

    _, results = check(shots, tmp_path / "edit", "identity", PORTRAIT)

    by_shot = {result.subject.shots[0]: result for result in results}
    assert by_shot["m1"].verdict is Verdict.PASS and by_shot["m1"].measured < 0.3
    assert by_shot["m2"].verdict is Verdict.PASS
    assert by_shot["w1"].verdict is Verdict.FAIL and by_shot["w1"].measured > 0.6
    assert by_shot["w1"].retake == ("w1",) and "reference portrait" in by_shot["w1"].message


def test_identity_without_a_reference_anchors_on_the_most_typical_face(tmp_path: Path) -> None:
    marcus, walter = load_rgb(DEMO_MEDIA / "marcus.jpg"), load_rgb(DEMO_MEDIA / "walter.jpg")
    track = write_track(tmp_path / "t.wav", tone(4.0))
    shots = [
        portrait_shot(tmp_path, "a", marcus, CameraMove.STATIC, track, 0, character="x"),
        portrait_shot(tmp_path, "b", walter, CameraMove.STATIC, track, 16_000, character="x"),
        portrait_shot(
            tmp_path, "c", np.ascontiguousarray(marcus[:, ::-1]), CameraMove.STATIC, track, 32_000, character="x"
        ),
    ]

    _, results = check(shots, tmp_path / "edit", "identity", PORTRAIT)

    assert verdicts(results) == {"x in a": Verdict.PASS, "x in b": Verdict.FAIL, "x in c": Verdict.PASS}


def test_a_shot_without_a_face_warns_that_its_identity_is_unchecked_or_fails_when_configured(tmp_path: Path) -> None:
    shots = synthetic_edit(tmp_path, [10])
    assembly = assemble_edit(shots, tmp_path / "edit", output=OUTPUT)

    (warned,) = run_checks(shots, assembly, only("identity"))
    (failed,) = run_checks(shots, assembly, only("identity", identity=CheckConfig(unmeasured=UnmeasuredPolicy.FAIL)))

    assert warned.verdict is Verdict.WARN and failed.verdict is Verdict.FAIL
    assert "not measured: no face found in 3 sampled frames" in warned.message
    assert warned.retake == () == failed.retake


def test_a_shot_whose_portrait_is_another_person_asks_for_a_portrait_fix_not_a_retake(tmp_path: Path) -> None:
    marcus, walter = load_rgb(DEMO_MEDIA / "marcus.jpg"), load_rgb(DEMO_MEDIA / "walter.jpg")
    track = write_track(tmp_path / "t.wav", tone(3.0))
    shots = [
        portrait_shot(
            tmp_path, "m1", marcus, CameraMove.STATIC, track, 0, character="marcus", reference=DEMO_MEDIA / "marcus.jpg"
        ),
        portrait_shot(
            tmp_path,
            "w1",
            walter,
            CameraMove.STATIC,
            track,
            16_000,
            character="marcus_double",
            person="marcus",
            reference=DEMO_MEDIA / "walter.jpg",
        ),
    ]

    _, results = check(shots, tmp_path / "edit", "identity", PORTRAIT)

    wrong = {result.subject.shots[0]: result for result in results}["w1"]
    assert wrong.verdict is Verdict.FAIL and wrong.retake == ()
    assert "walter.jpg is itself another face" in wrong.message
    assert "fix characters.marcus_double.image" in wrong.unfixable
    assert wrong.details["portrait_distance"] > 0.6


# -- colour -----------------------------------------------------------------------------------------


def test_colour_passes_a_matching_setup_and_flags_a_shifted_grade_within_the_scene(tmp_path: Path) -> None:
    base = (110, 120, 140)
    shifted = tuple(int(v) for v in warm_shift(np.array([[base]], np.uint8))[0, 0])
    shots = synthetic_edit(tmp_path, [25, 25, 25, 25], [base, base, shifted, shifted])
    shots[3] = replace(shots[3], scene_id="sc02", character_id="other")

    _, results = check(shots, tmp_path / "edit", "colour")

    assert verdicts(results) == {"cut s00 | s01": Verdict.PASS, "cut s01 | s02": Verdict.WARN}
    assert results[1].measured > 10 and "db*" in results[1].message
    assert results[0].measured < 2


def test_colour_compares_a_person_with_their_previous_shot_in_the_scene_not_with_other_people(tmp_path: Path) -> None:
    shots = synthetic_edit(tmp_path, [20, 20, 20], [(120, 120, 120), (20, 200, 20), (120, 120, 120)])
    shots[1] = replace(shots[1], character_id="walter")

    _, results = check(shots, tmp_path / "edit", "colour")

    assert verdicts(results) == {"cut s00 | s02": Verdict.PASS}


# -- audio ------------------------------------------------------------------------------------------


def test_audio_gap_passes_continuous_dialogue_and_fails_a_200_ms_gap_and_an_overlap(tmp_path: Path) -> None:
    frames = 25
    step = frames * SAMPLES_PER_FRAME
    starts = [0, step, 2 * step + 3_200, 3 * step + 3_200 - 1_600]  # continuous, +200 ms, -100 ms
    shots = synthetic_edit(tmp_path, [frames] * 4, starts=starts)

    _, results = check(shots, tmp_path / "edit", "audio_gap")

    assert verdicts(results) == {
        "cut s00 | s01": Verdict.PASS,
        "cut s01 | s02": Verdict.FAIL,
        "cut s02 | s03": Verdict.FAIL,
    }
    assert results[1].measured == pytest.approx(200.0) and "dropped" in results[1].message
    assert results[2].measured == pytest.approx(100.0) and "heard twice" in results[2].message
    assert results[1].retake == ()  # the audio comes from the shot list: a re-render cannot fix it


def test_audio_gap_tolerates_half_a_frame_of_timecode_rounding(tmp_path: Path) -> None:
    shots = synthetic_edit(tmp_path, [25, 25], starts=[0, 25 * SAMPLES_PER_FRAME + 320])  # 20 ms

    _, results = check(shots, tmp_path / "edit", "audio_gap")

    assert results[0].verdict is Verdict.PASS and results[0].measured == pytest.approx(20.0)


def test_audio_click_passes_a_seamless_cut_and_flags_a_step(tmp_path: Path) -> None:
    offset = 0.3 * np.ones(32_000) + tone(2.0, 100.0, 0.02)  # a level far from zero...
    track = np.concatenate([offset, tone(2.0, 100.0, 0.02)])  # ...then a quiet tone around zero
    shots = synthetic_edit(tmp_path, [20, 20, 20], track_samples=track, starts=[0, 20 * 640, 40_000])

    _, results = check(shots, tmp_path / "edit", "audio_click")

    assert verdicts(results) == {"cut s00 | s01": Verdict.PASS, "cut s01 | s02": Verdict.WARN}
    assert results[1].measured > 20


def test_loudness_jump_passes_an_even_level_and_flags_a_drop(tmp_path: Path) -> None:
    track = np.concatenate([tone(2.0, 300.0, 0.3), tone(1.0, 300.0, 0.05)])
    shots = synthetic_edit(tmp_path, [25, 25, 25], track_samples=track)

    _, results = check(shots, tmp_path / "edit", "loudness_jump")

    assert verdicts(results) == {"cut s00 | s01": Verdict.PASS, "cut s01 | s02": Verdict.WARN}
    assert results[1].measured == pytest.approx(15.6, abs=0.3)  # 20 log10(0.3 / 0.05)


def test_loudness_jump_is_skipped_for_a_shot_under_one_gating_block(tmp_path: Path) -> None:
    shots = synthetic_edit(tmp_path, [25, 8])

    _, results = check(shots, tmp_path / "edit", "loudness_jump")

    assert results[0].verdict is Verdict.SKIP and "under 400 ms" in results[0].message


# -- timing and format ------------------------------------------------------------------------------


def test_av_duration_passes_exact_shots_and_retakes_a_shot_with_missing_frames(tmp_path: Path) -> None:
    shots = synthetic_edit(tmp_path, [25, 25])
    short = write_frames(tmp_path / "short.mp4", [solid_frames(24, (9, 9, 9))], 24, width=160, height=96)
    shots[1] = replace(shots[1], video=short)

    _, results = check(shots, tmp_path / "edit", "av_duration")

    assert verdicts(results) == {"shot s00": Verdict.PASS, "shot s01": Verdict.FAIL}
    assert results[1].measured == pytest.approx(40.0) and results[1].retake == ("s01",)


def test_format_passes_matching_shots_and_warns_about_a_different_size(tmp_path: Path) -> None:
    shots = synthetic_edit(tmp_path, [20, 20])
    odd = write_frames(tmp_path / "odd.mp4", [solid_frames(20, (50, 50, 50), 128, 96)], 20, width=128, height=96)
    shots[1] = replace(shots[1], video=odd)

    _, results = check(shots, tmp_path / "edit", "format")

    assert verdicts(results) == {"shot s00": Verdict.PASS, "shot s01": Verdict.WARN}
    assert "width: 128 vs 160" in results[1].message and "re-encoded" in results[1].message


# -- picture inside a shot --------------------------------------------------------------------------


def panning(frames: int, seam_at: int | None = None) -> np.ndarray:
    """A textured image sliding 2 px per frame; with a seam, it jumps 40 px and changes exposure once."""
    rng = np.random.default_rng(0)
    texture = (rng.integers(0, 255, (96, 400, 3)) // 2 + 64).astype(np.uint8)
    texture = np.asarray(
        np.clip(np.repeat(np.repeat(texture[::8, ::8], 8, axis=0), 8, axis=1)[:96, :400], 0, 255), np.uint8
    )
    video = []
    for index in range(frames):
        offset = 2 * index + (40 if seam_at is not None and index >= seam_at else 0)
        frame = texture[:, offset : offset + 160].copy()
        if seam_at is not None and index >= seam_at:
            frame = np.clip(frame.astype(int) + 25, 0, 255).astype(np.uint8)
        video.append(frame)
    return np.stack(video)


def test_window_seam_passes_a_smooth_move_and_retakes_a_jump_inside_the_shot(tmp_path: Path) -> None:
    shots = synthetic_edit(
        tmp_path, [50, 50], frame_maker=lambda index, frames: panning(frames, seam_at=None if index == 0 else 30)
    )

    _, results = check(shots, tmp_path / "edit", "window_seam")

    assert verdicts(results) == {"shot s00": Verdict.PASS, "shot s01": Verdict.FAIL}
    assert results[1].details["shot_frame"] == 30 and results[1].frame == 80 and results[1].retake == ("s01",)


def test_black_frames_pass_a_normal_shot_and_fail_one_with_black_frames(tmp_path: Path) -> None:
    def maker(index: int, frames: int) -> np.ndarray:
        video = solid_frames(frames, (120, 100, 80))
        if index == 1:
            video[10:13] = 0
        return video

    shots = synthetic_edit(tmp_path, [25, 25], frame_maker=maker)

    _, results = check(shots, tmp_path / "edit", "black_frames")

    assert verdicts(results) == {"shot s00": Verdict.PASS, "shot s01": Verdict.FAIL}
    assert results[1].measured == 3 and results[1].frame == 35


def test_frozen_frames_pass_a_moving_shot_and_warn_about_a_stalled_one(tmp_path: Path) -> None:
    def maker(index: int, frames: int) -> np.ndarray:
        video = solid_frames(frames, (120, 100, 80))
        if index == 1:
            video[5:] = video[5]  # stalls after five frames: 2.4 s frozen
        return video

    shots = synthetic_edit(tmp_path, [70, 70], frame_maker=maker)

    _, results = check(shots, tmp_path / "edit", "frozen_frames")

    assert verdicts(results) == {"shot s00": Verdict.PASS, "shot s01": Verdict.WARN}
    assert results[1].measured == pytest.approx(64 / 25)


# -- configuration ----------------------------------------------------------------------------------


def test_thresholds_and_policies_come_from_the_shot_list(tmp_path: Path) -> None:
    shots = synthetic_edit(tmp_path, [25, 25], starts=[0, 25 * SAMPLES_PER_FRAME + 3_200])
    assembly = assemble_edit(shots, tmp_path / "edit", output=OUTPUT)

    lenient = run_checks(shots, assembly, only("audio_gap", audio_gap=CheckConfig(threshold=250.0)))
    warned = run_checks(shots, assembly, only("audio_gap", audio_gap=CheckConfig(policy=CheckPolicy.WARN)))
    retake = run_checks(shots, assembly, only("audio_gap", audio_gap=CheckConfig(policy=CheckPolicy.RETAKE)))

    assert lenient[0].verdict is Verdict.PASS and lenient[0].threshold == 250.0
    assert warned[0].verdict is Verdict.WARN
    assert retake[0].verdict is Verdict.FAIL and retake[0].retake == () and "cannot fix" in retake[0].message


def test_disabled_checks_do_not_run_and_unknown_ones_are_refused(tmp_path: Path) -> None:
    shots = synthetic_edit(tmp_path, [10, 10])
    assembly = assemble_edit(shots, tmp_path / "edit", output=OUTPUT)

    results = run_checks(shots, assembly, only("av_duration", "format"))

    assert {r.check for r in results} == {"av_duration", "format"}
    with pytest.raises(UsageError, match="no continuity check named 'lipsync'"):
        run_checks(shots, assembly, ContinuityConfig(checks={"lipsync": CheckConfig()}))
