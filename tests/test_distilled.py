"""Few-step by default (issue 19 part 1): a manifest's ``distilled:`` recipe runs when its LoRA is in the weights
folder (fused at load, guidance-free: one transformer pass per step), the full recipe stays for retakes, and
every render says which levers made it.

The LoRA is built by the test in diffusers' LoRA format (peft's lora_A / lora_B keys) and saved to a local
folder; the model is the tiny random one ``farm model create-tiny`` makes.
"""

from __future__ import annotations

import shutil
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest
import torch

from farm.avatar.base import RenderRequest
from farm.avatar.registry import create_model
from farm.avatar.wan_audio.loading import load_pipeline, load_with_levers
from farm.avatar.wan_audio.pipeline_wan_audio import WanAudioPipeline
from farm.avatar.wan_audio.render_params import SpeedLevers
from farm.avatar.wan_audio.tiny import create_tiny_model
from farm.catalog import DISTILLED, FULL, load_manifest
from farm.errors import ManifestError
from farm.settings import REPO_ROOT
from farm.shotlist.types import CameraMove, CameraSpec
from tests.tiny_wan import portrait, render, speech

LORA_DIR = "loras/speed"
PROJECTIONS = ("to_q", "to_k", "to_v", "to_out.0")
SHIPPED = REPO_ROOT / "models" / "stableavatar-1.3b.yaml"


def lora_layers(seed: int = 0) -> dict[str, torch.Tensor]:
    """Rank-4 LoRA matrices for every self-attention projection of the tiny DiT (24 wide, 2 blocks)."""
    generator = torch.Generator().manual_seed(seed)
    layers = {}
    for block in range(2):
        for projection in PROJECTIONS:
            name = f"blocks.{block}.attn1.{projection}"
            layers[f"{name}.lora_A.weight"] = torch.randn(4, 24, generator=generator)
            layers[f"{name}.lora_B.weight"] = torch.randn(24, 4, generator=generator) * 0.5
    return layers


@pytest.fixture(scope="module")
def weights(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = create_tiny_model(tmp_path_factory.mktemp("distilled") / "tiny")
    WanAudioPipeline.save_lora_weights(str(directory / LORA_DIR), transformer_lora_layers=lora_layers())
    return directory


class PassCounter:
    """Counts the guidance passes the DiT runs: the rows of every transformer call's batch."""

    def __init__(self, pipeline: WanAudioPipeline) -> None:
        self.calls = 0
        self.rows = 0
        pipeline.transformer.register_forward_pre_hook(self._count, with_kwargs=True)

    def _count(self, module: torch.nn.Module, args: tuple, kwargs: dict) -> None:
        self.calls += 1
        self.rows += kwargs["hidden_states"].shape[0]


def test_guidance_of_one_skips_the_cfg_passes_entirely(weights: Path) -> None:
    pipeline = load_pipeline(weights, "cpu", SpeedLevers())
    counter = PassCounter(pipeline)

    render(pipeline, num_inference_steps=2, guidance_batch=False, output_type="latent")
    guided = (counter.calls, counter.rows)
    counter.calls = counter.rows = 0
    render(pipeline, num_inference_steps=2, text_guidance_scale=1.0, audio_guidance_scale=1.0, output_type="latent")

    assert guided == (6, 6)  # 2 steps x 3 passes (nothing / audio / audio + text), one call each
    assert (counter.calls, counter.rows) == (2, 2)  # guidance-free: one pass per step


def test_a_lora_from_a_local_folder_is_fused_into_the_weights_as_a_manual_merge_would(weights: Path) -> None:
    plain = load_pipeline(weights, "cpu", SpeedLevers())
    fused = load_pipeline(weights, "cpu", SpeedLevers(lora=LORA_DIR, lora_scale=0.5))

    layers = lora_layers()
    for block in range(2):
        for projection in PROJECTIONS:
            name = f"blocks.{block}.attn1.{projection}"
            before = plain.transformer.get_submodule(name).weight
            delta = layers[f"{name}.lora_B.weight"] @ layers[f"{name}.lora_A.weight"]
            torch.testing.assert_close(fused.transformer.get_submodule(name).weight, before + 0.5 * delta)
    assert not [name for name, _ in fused.transformer.named_parameters() if "lora" in name]
    one_step = {"num_inference_steps": 1, "output_type": "latent"}
    assert (render(fused, **one_step) - render(plain, **one_step)).abs().max() > 1e-3


def test_float8_weights_are_stored_in_float8_and_render_close_to_full_precision(weights: Path) -> None:
    loaded = load_with_levers(weights, "cpu", SpeedLevers(dtype="float8"))
    block = loaded.pipeline.transformer.get_submodule("blocks.0.attn1.to_q")

    assert block.weight.dtype == torch.float8_e4m3fn
    assert (loaded.applied["weights_dtype"], loaded.applied["dtype"]) == ("float8_e4m3fn", "float32")
    one_step = {"num_inference_steps": 1, "output_type": "latent"}
    stored = render(loaded.pipeline, **one_step)
    full = render(load_pipeline(weights, "cpu", SpeedLevers()), **one_step)
    assert torch.isfinite(stored).all() and (stored - full).abs().mean() < 0.1 * full.abs().mean()


def manifest_copy(tmp_path: Path, weights: Path | None, edit: tuple[str, str] = ("", "")) -> Path:
    """The shipped stableavatar manifest, its distilled LoRA pointed at the test's, the weights at ``weights``."""
    text = SHIPPED.read_text().replace("loras/wan2.1-1.3b-step-cfg-distill-4step.safetensors", LORA_DIR)
    if weights is not None:
        text = text.replace("${FARM_WEIGHTS_DIR}/stableavatar-1.3b", str(weights))
    path = tmp_path / "stableavatar-1.3b.yaml"
    path.write_text(text.replace(*edit))
    return path


def test_the_distilled_recipe_is_the_default_where_its_lora_is_and_the_first_retake_rung_leaves_it(
    weights: Path, tmp_path: Path
) -> None:
    manifest = load_manifest(manifest_copy(tmp_path, weights))
    bare = tmp_path / "bare"
    shutil.copytree(weights, bare, ignore=shutil.ignore_patterns("loras"))
    without = load_manifest(manifest_copy(tmp_path, bare))

    assert manifest.recipe == DISTILLED and "fused at load: 4 steps, guidance-free" in manifest.recipe_note
    assert (manifest.defaults.steps, manifest.defaults.text_guidance, manifest.defaults.audio_guidance) == (4, 1, 1)
    assert (manifest.render_params["lora"], manifest.render_params["flow_shift"]) == (LORA_DIR, 3.0)
    back = manifest.escalation[0]
    assert (back.name, back.steps, back.text_guidance, back.audio_guidance) == ("non-distilled", 40, 3.0, 5.0)
    assert manifest.render_params_at(1)["lora"] is None and manifest.render_params_at(1)["flow_shift"] is None
    assert without.recipe == FULL and without.recipe_note == f"distilled LoRA {LORA_DIR} missing from {bare}"
    assert without.defaults.steps == 40 and without.render_params["lora"] is None


def test_a_distilled_render_reports_the_levers_it_ran_with(weights: Path, tmp_path: Path) -> None:
    manifest = load_manifest(manifest_copy(tmp_path, weights))
    model = create_model(manifest)
    model.load("cpu")
    defaults = manifest.defaults
    request = RenderRequest(
        shot_id="sc01_010", reference_image=portrait(48), audio=speech(9), sample_rate=16000, prompt="a man speaks",
        negative_prompt="blurry", camera=CameraSpec(CameraMove.STATIC, 0.0), fps=Fraction(25), width=32, height=32,
        frames=9, seed=7, steps=defaults.steps, text_guidance=defaults.text_guidance,
        audio_guidance=defaults.audio_guidance,
    )  # fmt: skip

    result = model.render(request, _Sink(), lambda fraction, phase: None)

    assert result.frames_written == 9
    assert {key: result.levers[key] for key in ("lora_fused", "steps", "steps_run", "guidance_passes")} == {
        "lora_fused": True, "steps": 4, "steps_run": 4, "guidance_passes": 1,
    }  # fmt: skip
    assert result.levers["flow_shift"] == 3.0 and result.levers["dtype"] == "float32"
    assert result.levers["step_cache"] == "off" and result.levers["attention_backend"] == "sdpa"


class _Sink:
    def write(self, frames: np.ndarray) -> None:
        assert frames.dtype == np.uint8


@pytest.mark.parametrize(
    ("edit", "where", "message"),
    [
        (("encode_threads: 2 ", "encode_threads: -1 "), ":14:19: ", "resources.encode_threads must be a whole number"),
        (("encode_threads: 2 ", "encode_threads: 1.5"), ":14:19: ", "resources.encode_threads"),
        (("  gpus: 1\n", "  gpus: 1\n  gpu: 1\n"), ":11:3: ", "resources.gpu is not a field of resources"),
        (("  steps: 4\n", "  steps: 0\n"), ":", "distilled.steps must be a whole number of at least 1"),
        (("  flow_shift: 3.0\n", "  flow_shift: fast\n"), ":", "distilled.flow_shift must be a positive number"),
    ],
)
def test_bad_manifest_values_are_refused_at_their_line_and_column(
    tmp_path: Path, edit: tuple[str, str], where: str, message: str
) -> None:
    path = manifest_copy(tmp_path, None, edit)
    lines = path.read_text().splitlines()
    written = edit[1].strip().splitlines()[-1].strip()
    line = next(number for number, text in enumerate(lines, 1) if text.strip().startswith(written))
    with pytest.raises(ManifestError) as refused:
        load_manifest(path)

    assert f"{path}:{line}:" in str(refused.value) and message in str(refused.value)
    if where != ":":
        assert f"{path}{where}" in str(refused.value)
