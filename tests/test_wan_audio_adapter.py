"""WanAudioModel on a tiny model made by `farm model create-tiny`: what goes beyond the AvatarModel contract.

The contract itself (frame count, last frames, progress, seeds, refused sizes and sample rates) is
tests/test_avatar_contract.py, which holds every adapter to it.
"""

from __future__ import annotations

import itertools
import subprocess
import sys
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from farm.avatar.base import Continuation, RenderRequest
from farm.avatar.registry import create_model
from farm.avatar.wan_audio.adapter import WanAudioModel
from farm.cli import cli
from farm.errors import ManifestError
from farm.shotlist.types import CameraMove, CameraSpec
from tests.tiny_wan import portrait, speech, tiny_manifest

REPO = Path(__file__).resolve().parents[1]


class ListSink:
    def __init__(self) -> None:
        self.chunks: list[np.ndarray] = []

    def write(self, frames: np.ndarray) -> None:
        assert frames.dtype == np.uint8 and frames.ndim == 4
        self.chunks.append(frames.copy())

    @property
    def frames(self) -> np.ndarray:
        return np.concatenate(self.chunks)


def request(frames: int = 9, **changes: Any) -> RenderRequest:
    fields: dict[str, Any] = dict(
        shot_id="sc01_010",
        reference_image=portrait(48),
        audio=speech(frames),
        sample_rate=16000,
        prompt="a man speaks calmly",
        negative_prompt="blurry",
        camera=CameraSpec(CameraMove.STATIC, 0.0),
        fps=Fraction(25),
        width=32,
        height=32,
        frames=frames,
        seed=7,
        steps=2,
        text_guidance=3.0,
        audio_guidance=4.0,
    )
    fields.update(changes)
    return RenderRequest(**fields)


@pytest.fixture(scope="module")
def weights(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("weights") / "tiny"
    result = CliRunner().invoke(cli, ["model", "create-tiny", str(directory)])
    assert result.exit_code == 0, result.output
    return directory


@pytest.fixture(scope="module")
def model(weights: Path, tmp_path_factory: pytest.TempPathFactory) -> WanAudioModel:
    manifest = tiny_manifest(tmp_path_factory.mktemp("models"), weights, "window_latent_frames: 21")
    instance = create_model(manifest)
    instance.load("cpu")
    return instance  # type: ignore[return-value]


def test_create_tiny_writes_a_loadable_pipeline_and_refuses_a_full_directory(weights: Path) -> None:
    assert (weights / "model_index.json").is_file()
    assert (weights / "transformer" / "config.json").is_file()

    result = CliRunner().invoke(cli, ["model", "create-tiny", str(weights)])

    assert result.exit_code == 2
    assert "not empty" in result.output


@pytest.mark.parametrize("frames", [7, 12])
def test_render_writes_exactly_the_requested_frames_and_returns_the_last_ones(
    model: WanAudioModel, frames: int
) -> None:
    sink, progress = ListSink(), []

    result = model.render(request(frames), sink, lambda fraction, phase: progress.append((fraction, phase)))

    assert result.frames_written == frames
    assert sink.frames.shape == (frames, 32, 32, 3)
    np.testing.assert_array_equal(result.last_frames, sink.frames[-5:])
    assert [phase for _, phase in progress].count("denoise") == 2  # one report per denoising step
    assert progress[-1] == (1.0, "decode")
    assert all(b[0] >= a[0] for a, b in itertools.pairwise(progress))
    assert set(result.timings) >= {"denoise_s", "decode_s", "total_s"}


def test_a_continued_shot_starts_differently_from_a_fresh_one(model: WanAudioModel) -> None:
    previous = ListSink()
    earlier = model.render(request(9, seed=3, reference_image=portrait(48, seed=5)), previous, lambda *_: None)
    fresh, continued = ListSink(), ListSink()

    model.render(request(9), fresh, lambda *_: None)
    model.render(request(9, continuation=Continuation(earlier.last_frames)), continued, lambda *_: None)

    assert np.abs(fresh.frames[:2].astype(int) - continued.frames[:2].astype(int)).mean() > 0.5


def test_a_camera_move_renders_through_its_reference_video(model: WanAudioModel) -> None:
    static, moving = ListSink(), ListSink()

    model.render(request(9), static, lambda *_: None)
    model.render(request(9, camera=CameraSpec(CameraMove.PUSH_IN, 1.0)), moving, lambda *_: None)

    assert moving.frames.shape == static.frames.shape
    assert not np.array_equal(moving.frames, static.frames)


def test_after_running_out_of_memory_the_model_renders_the_next_shot(
    model: WanAudioModel, monkeypatch: pytest.MonkeyPatch
) -> None:
    def exhausted(*args: object, **kwargs: object) -> None:
        raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")

    monkeypatch.setattr(type(model._pipeline), "__call__", exhausted)

    with pytest.raises(torch.OutOfMemoryError):  # the worker maps it to farm's OutOfMemoryError
        model.render(request(), ListSink(), lambda *_: None)

    monkeypatch.undo()
    sink = ListSink()
    assert model.render(request(5), sink, lambda *_: None).frames_written == 5
    assert sink.frames.shape == (5, 32, 32, 3)


def test_low_memory_params_reload_the_pipeline_with_the_new_levers(model: WanAudioModel) -> None:
    before = model._pipeline
    sink = ListSink()

    model.render(request(5, params={"offload": "model", "guidance_batch": False}), sink, lambda *_: None)

    assert model._pipeline is not before
    assert model._pipeline._offload_device == torch.device("cpu")
    assert sink.frames.shape == (5, 32, 32, 3)


def test_a_cuda_worker_without_cuda_renders_on_the_cpu_and_says_so(weights: Path, tmp_path: Path) -> None:
    model = WanAudioModel(tiny_manifest(tmp_path, weights))
    model.load("cuda:0")  # a fake-GPU Ray node hands out GPU ids on a CPU-only machine

    result = model.render(request(5), ListSink(), lambda *_: None)

    assert result.frames_written == 5
    fell_back = any("CUDA is not available" in warning for warning in result.warnings)
    assert fell_back == (not torch.cuda.is_available())


def test_unknown_render_parameters_name_the_manifest(weights: Path, tmp_path: Path) -> None:
    manifest = tiny_manifest(tmp_path, weights, "window_frames: 81")

    with pytest.raises(ManifestError, match=r"tiny-avatar.yaml: render parameters: unknown .*window_frames"):
        WanAudioModel(manifest).load("cpu")


def test_missing_weights_say_how_to_get_them(tmp_path: Path) -> None:
    manifest = tiny_manifest(tmp_path, tmp_path / "nowhere")

    with pytest.raises(ManifestError, match=r"farm model convert"):
        WanAudioModel(manifest).load("cpu")


def test_importing_the_adapter_does_not_import_torch() -> None:
    code = "import sys, farm.avatar.wan_audio.adapter as a; print(a.WanAudioModel.code_version, 'torch' in sys.modules)"
    output = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True)

    assert output.stdout.split() == ["wan-audio-2", "False"]


def test_the_model_list_shows_the_stableavatar_manifest() -> None:
    result = CliRunner().invoke(cli, ["model", "list", "--json", "--models-dir", str(REPO / "models")])

    assert result.exit_code == 0, result.output
    assert "stableavatar-1.3b" in result.output
