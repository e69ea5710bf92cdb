"""Speed levers and the streaming VAE: same results as the library's whole-video calls, in less memory."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file

from farm.avatar.wan_audio.loading import load_pipeline
from farm.avatar.wan_audio.render_params import RenderParams, RenderParamsError, SpeedLevers
from farm.avatar.wan_audio.tiny import create_tiny_model
from farm.avatar.wan_audio.video_vae import decode_latents, encode_video, latent_statistics, pixel_chunks
from tests.tiny_wan import render, tiny_pipeline


@pytest.fixture(scope="module")
def weights(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = create_tiny_model(tmp_path_factory.mktemp("levers") / "tiny")
    generator = torch.Generator().manual_seed(0)
    lora = {}
    for block in range(2):
        for projection in ("to_q", "to_k", "to_v", "to_out.0"):
            prefix = f"transformer.blocks.{block}.attn1.{projection}"
            lora[f"{prefix}.lora_A.weight"] = torch.randn(4, 24, generator=generator)
            lora[f"{prefix}.lora_B.weight"] = torch.randn(24, 4, generator=generator)
    (directory / "loras").mkdir()
    save_file(lora, str(directory / "loras" / "distilled.safetensors"))
    return directory


def test_a_step_distilled_lora_is_fused_into_the_dit_at_load(weights: Path) -> None:
    plain = load_pipeline(weights, "cpu", SpeedLevers())
    fused = load_pipeline(weights, "cpu", SpeedLevers(lora="loras/distilled.safetensors"))

    assert not [name for name, _ in fused.transformer.named_parameters() if "lora" in name]
    difference = render(fused, output_type="latent") - render(plain, output_type="latent")
    assert difference.abs().max() > 0.1


def test_step_cache_and_vae_tiling_levers_load_and_render(weights: Path) -> None:
    levers = SpeedLevers(step_cache_threshold=0.05, vae_tiling=True, vae_slicing=True)
    pipeline = load_pipeline(weights, "cpu", levers)

    frames = render(pipeline, num_frames=9, num_inference_steps=4)

    assert pipeline.transformer.is_cache_enabled
    assert frames.shape == (9, 32, 32, 3)


def test_streaming_decode_equals_the_whole_video_decode() -> None:
    vae = tiny_pipeline().vae
    latents = torch.randn(1, 16, 4, 4, 6, generator=torch.Generator().manual_seed(1))
    mean, inverse_std = latent_statistics(vae, latents.device, latents.dtype)

    streamed = torch.cat(list(decode_latents(vae, latents, chunk_latents=1)), dim=2)
    whole = vae.decode(latents / inverse_std + mean).sample

    torch.testing.assert_close(streamed, whole, rtol=0, atol=1e-6)


def test_streaming_tiled_decode_equals_diffusers_tiled_decode() -> None:
    vae = tiny_pipeline().vae
    vae.enable_tiling(
        tile_sample_min_height=32, tile_sample_min_width=32, tile_sample_stride_height=24, tile_sample_stride_width=24
    )
    latents = torch.randn(1, 16, 3, 8, 10, generator=torch.Generator().manual_seed(2))
    mean, inverse_std = latent_statistics(vae, latents.device, latents.dtype)

    streamed = torch.cat(list(decode_latents(vae, latents, chunk_latents=2)), dim=2)
    whole = vae.tiled_decode(latents / inverse_std + mean).sample.clamp(-1, 1)

    torch.testing.assert_close(streamed, whole, rtol=0, atol=1e-6)


def test_streaming_encode_equals_the_whole_video_encode() -> None:
    vae = tiny_pipeline().vae
    video = torch.rand(1, 3, 9, 32, 32, generator=torch.Generator().manual_seed(3)) * 2 - 1
    mean, inverse_std = latent_statistics(vae, video.device, video.dtype)

    streamed = encode_video(vae, pixel_chunks(video[:, :, i : i + 1] for i in range(9)))
    whole = (vae.encode(video).latent_dist.mode() - mean) * inverse_std

    torch.testing.assert_close(streamed, whole, rtol=0, atol=1e-5)


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ({"overlap_latent_frames": 21}, "overlap_latent_frames"),
        ({"offload": "disk"}, "offload must be one of"),
        ({"camera_strength": 0}, "camera_strength"),
        ({"windw_latent_frames": 9}, "unknown render parameter"),
    ],
)
def test_bad_render_parameters_are_named(raw: dict[str, object], message: str) -> None:
    with pytest.raises(RenderParamsError, match=message):
        RenderParams.from_mapping(raw)


def test_the_shipped_manifest_parameters_and_overlay_are_valid() -> None:
    from farm.catalog import load_manifest

    manifest = load_manifest(Path(__file__).resolve().parents[1] / "models" / "stableavatar-1.3b.yaml")

    normal = RenderParams.from_mapping(manifest.render_params)
    low = RenderParams.from_mapping({**manifest.render_params, **manifest.low_memory})

    assert normal.levers.offload == "none" and low.levers.offload == "model"
    assert manifest.size_multiple == 16 and (manifest.continuation_frames - 1) % 4 == 0
