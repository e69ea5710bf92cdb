"""Takes of any length: the split at speech pauses, the plan's segments and keys, a segmented take that
renders as the whole take would, re-anchoring every N segments, and the seams the edit checks."""

from __future__ import annotations

import json
import shutil
from dataclasses import replace
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from farm.avatar.base import RenderRequest
from farm.avatar.registry import create_model
from farm.catalog import ModelCatalog
from farm.edit.assemble import assemble_edit
from farm.edit.checks import CHECKS, Verdict, run_checks
from farm.edit.timeline import EditShot
from farm.engine.takes import array_segments, colour_stats, match_colour, render_take, take_segments
from farm.media.image import load_rgb
from farm.media.speech import pause_cuts
from farm.media.video import ShotVideoWriter
from farm.plan import ModelIdentities, Plan, cache_key, key_document, plan_shot_list, task_cache_key
from farm.settings import REPO_ROOT
from farm.shotlist.load import load_shot_list
from farm.shotlist.types import CameraMove, CameraSpec, CheckConfig, ContinuityConfig, OutputSpec
from tests.edit_shots import edit_shot, warm_shift, write_track
from tests.shotlists import DEMO_MEDIA, TEMPLATE, make_project, replace_once

RATE = 16_000
FPS = Fraction(25)


def phrases(pattern: list[tuple[float, float]], seed: int = 0) -> np.ndarray:
    """Noise 'speech' and gaps: (seconds, amplitude) pieces; amplitude 0 is digital silence."""
    rng = np.random.default_rng(seed)
    pieces = [
        (amplitude * rng.standard_normal(round(seconds * RATE))).astype(np.int16) for seconds, amplitude in pattern
    ]
    return np.concatenate(pieces)


# --- the split ----------------------------------------------------------------------------------------------


def test_cuts_land_in_the_pauses_and_keep_the_bounds() -> None:
    audio = phrases([(1.5, 4000), (0.4, 0), (1.2, 4000), (0.5, 0), (1.6, 4000), (0.3, 0), (1.0, 4000)])
    pauses = [(1.5, 1.9), (3.1, 3.6), (5.2, 5.5)]

    cuts = pause_cuts(audio, RATE, 1 * RATE, 3 * RATE)

    assert cuts, "a 6.5 s stretch with a 3 s maximum must be cut"
    edges = (0, *cuts, len(audio))
    for cut in cuts:
        assert any(start * RATE <= cut <= end * RATE for start, end in pauses), (
            f"cut at {cut / RATE:.2f} s is in speech"
        )
    lengths = np.diff(edges) / RATE
    assert lengths.max() <= 3.0 and lengths[:-1].min() >= 1.0
    assert pause_cuts(audio, RATE, 1 * RATE, 3 * RATE) == cuts, "the same audio cuts the same way"


def test_the_quietest_pause_in_the_span_wins() -> None:
    audio = phrases([(1.2, 4000), (0.4, 150), (0.6, 4000), (0.4, 0), (1.2, 4000)])

    (cut,) = pause_cuts(audio, RATE, 1 * RATE, 3 * RATE)

    assert 2.2 * RATE <= cut <= 2.6 * RATE, "the digital silence, not the louder room tone, is the cut"


def test_speech_without_a_pause_is_cut_hard_at_the_maximum_and_a_short_stretch_not_at_all() -> None:
    audio = phrases([(7.0, 4000)])

    assert pause_cuts(audio, RATE, 1 * RATE, 3 * RATE) == (3 * RATE, 6 * RATE)
    assert pause_cuts(audio[: 3 * RATE], RATE, 1 * RATE, 3 * RATE) == ()
    with pytest.raises(ValueError):
        pause_cuts(audio, RATE, 3 * RATE, 1 * RATE)


# --- the plan -----------------------------------------------------------------------------------------------


LONG_SHOT = replace_once(
    TEMPLATE, "audio: {track: sc01, in: 4.56, out: 7.68}", "audio: {track: sc01, in: 0, out: 7.68}"
)
"""Shot c speaks the whole 7.7 s track; a and b stay short."""


def catalog_with_segments(root: Path, segments: str | None) -> ModelCatalog:
    models = root / "models"
    shutil.copytree(REPO_ROOT / "models", models, dirs_exist_ok=True)
    text = (models / "previz.yaml").read_text().split("\nsegments:")[0] + "\n"
    (models / "previz.yaml").write_text(text + (f"segments: {segments}\n" if segments else ""))
    return ModelCatalog(models)


def plan_with(root: Path, segments: str | None) -> Plan:
    catalog = catalog_with_segments(root / (segments or "none").replace(" ", "").replace(",", "_"), segments)
    return plan_shot_list(load_shot_list(make_project(root, LONG_SHOT), catalog=catalog), catalog)


def test_a_long_shot_is_planned_as_segments_in_its_key_and_farm_plan_shows_them(tmp_path: Path) -> None:
    segments = "{min_seconds: 1, max_seconds: 2.5, reanchor_every: 2}"
    plan = plan_with(tmp_path, segments)
    a, _, c = plan.tasks

    assert a.segments == () and a.seam_frames == ()
    assert len(c.segments) >= 3 and sum(c.segments) == c.frames
    assert max(c.segments) <= 2.5 * 25 + 1 and min(c.segments[:-1]) >= 1 * 25 - 1
    assert c.seam_frames == tuple(np.cumsum(c.segments)[:-1]) and c.reanchor_every == 2
    shown = c.to_json()
    assert shown["segments"] == list(c.segments) and shown["seam_frames"] == list(c.seam_frames)
    assert type(c).from_json(shown) == c

    unsplit = plan_with(tmp_path, None)
    other_bounds = plan_with(tmp_path, "{min_seconds: 1, max_seconds: 3.5, reanchor_every: 2}")
    other_anchor = plan_with(tmp_path, "{min_seconds: 1, max_seconds: 2.5, reanchor_every: 3}")
    assert unsplit.tasks[0].cache_key == a.cache_key, "a shot in one piece keeps its key"
    assert other_bounds.tasks[2].segments != c.segments
    assert len({unsplit.tasks[2].cache_key, c.cache_key, other_bounds.tasks[2].cache_key}) == 3
    assert other_anchor.tasks[2].cache_key != c.cache_key


def test_a_cache_key_is_the_sha256_of_its_whole_key_document(tmp_path: Path) -> None:
    """The planner assembles the canonical JSON from parts (the model's encoded once per model); the key must
    be exactly the one of the whole document, split takes and continuations included."""
    plan = plan_with(tmp_path, "{min_seconds: 1, max_seconds: 2.5, reanchor_every: 2}")
    catalog = ModelCatalog(REPO_ROOT / "models")
    identities = ModelIdentities(catalog, None)
    keys = {task.shot_id: task.cache_key for task in plan.tasks}
    assert any(len(task.segments) > 1 for task in plan.tasks) and any(task.continues for task in plan.tasks)
    for task in plan.tasks:
        identity = identities.identity(catalog.get(task.model))
        continues_key = keys[task.continues] if task.continues else None
        document = key_document(task, identity, continues_key)
        assert task.cache_key == task_cache_key(task, identity, continues_key) == cache_key(document)


def test_farm_plan_lists_a_takes_segments(tmp_path: Path) -> None:
    from farm.cli import cli

    models = catalog_with_segments(tmp_path / "cat", "{min_seconds: 1, max_seconds: 2.5}").models_dir
    shot_list = make_project(tmp_path, LONG_SHOT)
    result = CliRunner().invoke(cli, ["plan", str(shot_list), "--json"], env={"FARM_MODELS_DIR": str(models)})

    assert result.exit_code == 0, result.output
    shots = json.loads(result.output)["shots"]
    assert len(shots[2]["segments"]) >= 3 and shots[0]["segments"] == []


# --- rendering a take ---------------------------------------------------------------------------------------

WIDTH, HEIGHT = 240, 416


def previz_request(frames: int, camera: CameraSpec) -> RenderRequest:
    return RenderRequest(
        shot_id="take",
        reference_image=load_rgb(DEMO_MEDIA / "marcus.jpg"),
        audio=np.zeros(0, np.float32),
        sample_rate=RATE,
        prompt="",
        negative_prompt="",
        camera=camera,
        fps=FPS,
        width=WIDTH,
        height=HEIGHT,
        frames=frames,
        seed=7,
        steps=1,
        text_guidance=0.0,
        audio_guidance=0.0,
    )


class ListSink:
    def __init__(self) -> None:
        self.chunks: list[np.ndarray] = []

    def write(self, frames: np.ndarray) -> None:
        self.chunks.append(frames.copy())

    @property
    def frames(self) -> np.ndarray:
        return np.concatenate(self.chunks)


def test_a_three_segment_previz_take_is_the_whole_take_and_reports_its_seams() -> None:
    model = create_model(ModelCatalog(REPO_ROOT / "models").get("previz"))
    model.load("cpu")
    segments = (8, 10, 9)
    frames = sum(segments)
    request = previz_request(frames, CameraSpec(CameraMove.PAN_RIGHT, 0.6))
    silence = np.zeros(round(frames / FPS * RATE), np.int16)

    whole = ListSink()
    model.render(replace(request, audio=silence.astype(np.float32)), whole, lambda *_: None)
    take, progress = ListSink(), []
    result = render_take(
        model, request, segments, 2, array_segments(silence, segments, FPS), take, lambda f, p: progress.append(f)
    )

    assert result.frames_written == frames and result.seams == (8, 18) and result.reanchored == (2,)
    assert np.array_equal(take.frames, whole.frames), "camera, blinks and sway run on across the seams"
    assert progress == sorted(progress) and progress[-1] == 1.0
    assert np.array_equal(result.last_frames[-1], whole.frames[-1])


def test_reanchoring_comes_every_n_segments_and_pulls_the_colour_to_the_reference() -> None:
    plan = take_segments((5, 5, 5, 5, 5, 5, 5), FPS, 3)
    assert [segment.index for segment in plan if segment.reanchor] == [3, 6]
    assert [segment.first_sample for segment in plan][:3] == [0, 3200, 6400]
    assert plan[-1].end_sample == round(35 / FPS * RATE)

    reference = load_rgb(DEMO_MEDIA / "marcus.jpg")
    drifted = warm_shift(reference)[None].repeat(2, axis=0)
    target = colour_stats(reference)
    matched = match_colour(drifted, target)
    before = np.abs(colour_stats(drifted[-1]).mean - target.mean).max()
    after = np.abs(colour_stats(matched[-1]).mean - target.mean).max()
    assert before > 15 and after < 2


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory: pytest.TempPathFactory):
    from farm.cli import cli
    from tests.tiny_wan import tiny_manifest

    weights = tmp_path_factory.mktemp("weights") / "tiny"
    assert CliRunner().invoke(cli, ["model", "create-tiny", str(weights)]).exit_code == 0
    model = create_model(tiny_manifest(tmp_path_factory.mktemp("models"), weights))
    model.load("cpu")
    return model


def test_the_diffusion_model_continues_each_segment_and_reanchors_only_every_nth(tiny_model) -> None:
    from tests.tiny_wan import portrait, speech

    segments = (5, 5, 5)
    request = replace(
        previz_request(15, CameraSpec(CameraMove.STATIC)),
        reference_image=portrait(48),
        width=32,
        height=32,
        steps=2,
        text_guidance=3.0,
        audio_guidance=4.0,
    )
    audio = np.round(speech(15) * 32767).astype(np.int16)

    def take(reanchor_every: int) -> np.ndarray:
        sink = ListSink()
        render_take(tiny_model, request, segments, reanchor_every, array_segments(audio, segments, FPS), sink, print)
        return sink.frames

    never, at_third = take(0), take(2)

    assert never.shape == (15, 32, 32, 3)
    assert np.array_equal(never[:10], at_third[:10]), "segments before the re-anchor are untouched"
    assert not np.array_equal(never[10:], at_third[10:]), "the third segment continued from re-anchored frames"


# --- seams in the edit --------------------------------------------------------------------------------------


def take_shot(root: Path, frames: np.ndarray, seams: tuple[int, ...], track: Path) -> EditShot:
    video = root / "take.mp4"
    with ShotVideoWriter(video, width=WIDTH, height=HEIGHT, fps=FPS, frames=len(frames)) as sink:
        sink.write(frames)
    return replace(edit_shot("take", video, len(frames), track, 0, character="marcus"), seams=seams)


def test_the_edit_checks_colour_and_identity_across_each_seam(tmp_path: Path) -> None:
    model = create_model(ModelCatalog(REPO_ROOT / "models").get("previz"))
    model.load("cpu")
    frames = ListSink()
    model.render(previz_request(36, CameraSpec(CameraMove.STATIC)), frames, lambda *_: None)
    rendered = frames.frames
    jumped = np.concatenate([rendered[:24], np.stack([warm_shift(frame) for frame in rendered[24:]])])
    track = write_track(tmp_path / "t.wav", np.zeros(2 * RATE, np.float32))
    checks = ContinuityConfig(
        checks={c.name: CheckConfig(enabled=c.name in ("seam_colour", "seam_identity")) for c in CHECKS}
    )
    output = OutputSpec(FPS, WIDTH, HEIGHT)

    results = {}
    for name, video in (("smooth", rendered), ("jumped", jumped)):
        folder = tmp_path / name
        folder.mkdir()
        shot = take_shot(folder, video, (12, 24), track)
        assembly = assemble_edit([shot], folder / "edit", output=output)
        results[name] = run_checks([shot], assembly, checks)

    smooth = {(r.check, r.frame): r for r in results["smooth"]}
    assert set(smooth) == {(check, frame) for check in ("seam_colour", "seam_identity") for frame in (12, 24)}
    assert all(result.verdict is Verdict.PASS for result in smooth.values()), [r.message for r in smooth.values()]
    jumped_colour = {r.frame: r.verdict for r in results["jumped"] if r.check == "seam_colour"}
    assert jumped_colour == {12: Verdict.PASS, 24: Verdict.WARN}


def test_a_diffusion_segment_sees_its_stretch_of_the_takes_camera_move() -> None:
    from farm.avatar.camera import render_camera_video
    from farm.avatar.wan_audio.adapter import _segment_camera_video

    request = replace(previz_request(30, CameraSpec(CameraMove.PAN_LEFT, 0.5)), width=64, height=96)
    whole = np.stack(list(render_camera_video(request.reference_image, request.camera, 30, 64, 96, request.seed)))
    segment = replace(request, frames=10, take_offset=12, take_frames=30)

    assert np.array_equal(np.stack(list(_segment_camera_video(segment))), whole[12:22])
