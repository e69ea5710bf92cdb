"""Lip sync on a real previz render: in sync it passes, its audio slipped 3 frames fails with lag 3, and
silence under a moving mouth fails; the limits come from the shot list and a window seam is measured."""

from __future__ import annotations

import json
from dataclasses import replace
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest

from farm.avatar.base import RenderRequest
from farm.avatar.registry import create_model
from farm.catalog import ModelCatalog
from farm.edit.assemble import assemble_edit
from farm.edit.checks import CHECKS, run_checks
from farm.edit.checks.lipsync import Limits, parse_curve
from farm.edit.report import write_report
from farm.edit.retakes import plan_retakes
from farm.edit.timeline import EditShot, slipped
from farm.errors import UsageError
from farm.media.audio import decode_audio
from farm.media.image import load_rgb
from farm.media.lipsync import best_lag, speech_envelope
from farm.shotlist.types import CameraMove, CameraSpec, CheckConfig, ContinuityConfig, OutputSpec
from farm.verdicts import Verdict
from tests.edit_shots import FPS, RATE, edit_shot, write_frames, write_track
from tests.shotlists import DEMO_MEDIA, REPO

WIDTH, HEIGHT = 120, 208
FRAMES = 75
START = RATE
"""The shot speaks 1 s into the scene's track, so a slip has track to reach back into."""
OUTPUT = OutputSpec(FPS, WIDTH, HEIGHT)
LIP_SYNC = ContinuityConfig(checks={check.name: CheckConfig(enabled=check.name == "lip_sync") for check in CHECKS})


class Frames:
    def __init__(self) -> None:
        self.chunks: list[np.ndarray] = []

    def write(self, frames: np.ndarray) -> None:
        self.chunks.append(frames)


@pytest.fixture(scope="module")
def previz_shot(tmp_path_factory: pytest.TempPathFactory) -> EditShot:
    """3 s of marcus speaking scene 1, rendered by previz at 120x208, with the track it was rendered from."""
    root = tmp_path_factory.mktemp("lipsync")
    track = decode_audio(DEMO_MEDIA / "sc01_dialogue.wav")
    count = FRAMES * RATE // 25
    model = create_model(ModelCatalog(REPO / "models").get("previz"))
    model.load("cpu")
    request = RenderRequest(
        shot_id="talk",
        reference_image=load_rgb(DEMO_MEDIA / "marcus.jpg"),
        audio=track[START : START + count].astype(np.float32) / 32768,
        sample_rate=RATE,
        prompt="a man speaks",
        negative_prompt="",
        camera=CameraSpec(CameraMove.STATIC),
        fps=FPS,
        width=WIDTH,
        height=HEIGHT,
        frames=FRAMES,
        seed=3,
        steps=1,
        text_guidance=0.0,
        audio_guidance=0.0,
    )
    sink = Frames()
    model.render(request, sink, lambda fraction, phase: None)
    video = write_frames(root / "talk.mp4", sink.chunks, FRAMES, width=WIDTH, height=HEIGHT)
    return edit_shot("talk", video, FRAMES, DEMO_MEDIA / "sc01_dialogue.wav", START)


def lip_sync(shot: EditShot, out: Path, config: ContinuityConfig = LIP_SYNC) -> list:
    out.mkdir(parents=True, exist_ok=True)
    assembly = assemble_edit([shot], out, output=OUTPUT)
    return run_checks([shot], assembly, config)


def test_a_previz_render_is_in_sync(previz_shot: EditShot, tmp_path: Path) -> None:
    [result] = lip_sync(previz_shot, tmp_path)

    assert result.verdict is Verdict.PASS, result.message
    assert result.details["lag_frames"] == 0
    assert float(result.details["correlation"]) > 0.7
    assert len(parse_curve(str(result.details["mouth_curve"]))) == FRAMES


def test_its_audio_slipped_3_frames_late_fails_with_lag_3_and_names_the_slip_not_a_retake(
    previz_shot: EditShot, tmp_path: Path
) -> None:
    late = replace(previz_shot, audio=slipped(previz_shot.audio, 3, FPS, "talk"), audio_slip=3)
    [result] = lip_sync(late, tmp_path)

    assert result.verdict is Verdict.FAIL
    assert result.details["lag_frames"] == 3 and result.details["lag_ms"] == 120.0
    assert result.retake == () and "audio.slip" in result.unfixable
    assert "sound late" in result.message and "slipped +3" in result.message


def test_the_report_lists_lip_sync_figures_and_draws_the_curves_of_a_flagged_shot(
    previz_shot: EditShot, tmp_path: Path
) -> None:
    late = replace(previz_shot, audio=slipped(previz_shot.audio, 3, FPS, "talk"), audio_slip=3)
    assembly = assemble_edit([late], tmp_path, output=OUTPUT)
    results = run_checks([late], assembly, LIP_SYNC)
    paths = write_report([late], assembly, results, tmp_path)

    [row] = json.loads(paths.json.read_text())["lip_sync"]
    assert (row["shot"], row["lag_frames"], row["verdict"]) == ("talk", 3, "fail")
    page = paths.html.read_text()
    assert "<h2>Lip sync</h2>" in page and page.count("<polyline") == 2


def test_a_render_out_of_sync_is_retaken_with_a_new_seed(previz_shot: EditShot, tmp_path: Path) -> None:
    out_of_sync = replace(previz_shot, audio=slipped(previz_shot.audio, 3, FPS, "talk"))  # as if the model lagged
    results = lip_sync(out_of_sync, tmp_path)
    plan = plan_retakes(results, [out_of_sync], max_retakes=2)

    assert results[0].retake == ("talk",)
    assert [retake.shot_id for retake in plan.retakes] == ["talk"]
    assert "lost the audio's timing" in plan.retakes[0].reason


def test_a_2_frame_lead_fails_and_the_limits_come_from_the_shot_list(previz_shot: EditShot, tmp_path: Path) -> None:
    early = replace(previz_shot, audio=slipped(previz_shot.audio, -2, FPS, "talk"))
    [strict] = lip_sync(early, tmp_path / "strict")
    lenient = ContinuityConfig(checks={**LIP_SYNC.checks, "lip_sync": CheckConfig(limits={"max_lead_ms": 100.0})})
    [tolerant] = lip_sync(early, tmp_path / "lenient", lenient)

    assert strict.details["lag_frames"] == -2 and strict.verdict is Verdict.FAIL
    assert tolerant.verdict is Verdict.PASS


def test_silence_under_a_moving_mouth_fails(previz_shot: EditShot, tmp_path: Path) -> None:
    silence = write_track(tmp_path / "silence.wav", np.zeros(START + FRAMES * RATE // 25))
    mute = replace(previz_shot, audio=replace(previz_shot.audio, path=silence))
    [result] = lip_sync(mute, tmp_path / "edit")

    assert result.verdict is Verdict.FAIL
    assert result.details["correlation"] == 0.0


def test_a_window_seam_is_measured_on_the_frames_around_it(previz_shot: EditShot, tmp_path: Path) -> None:
    results = lip_sync(replace(previz_shot, seams=(40,)), tmp_path)

    assert [r.subject.label for r in results] == ["shot talk", "shot talk window seam at frame 40"]
    assert results[1].details["seam_frame"] == 40 and results[1].verdict is Verdict.PASS


def test_the_lag_search_finds_a_known_shift_and_limits_weigh_lead_lag_and_fit() -> None:
    rng = np.random.default_rng(1)
    mouth = np.convolve(rng.random(120), np.ones(4) / 4, mode="same")
    envelope = np.concatenate([np.zeros(5), mouth[:-5]])

    assert best_lag(mouth, envelope, 10).lag_frames == 5
    assert Limits().excess(60.0, 0.9) == pytest.approx(1.0)
    assert Limits().excess(-80.0, 0.9) == pytest.approx(2.0)
    assert Limits().excess(0.0, 0.15) == pytest.approx(2.0)
    assert speech_envelope(np.zeros(640 * 3, np.int16), RATE, Fraction(25), 3).tolist() == [-60.0] * 3


def test_a_slip_before_the_start_of_the_track_is_refused(previz_shot: EditShot) -> None:
    with pytest.raises(UsageError, match=r"audio\.slip 30 frames"):
        slipped(previz_shot.audio, 30, FPS, "talk")
