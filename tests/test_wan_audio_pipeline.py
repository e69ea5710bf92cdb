"""WanAudioPipeline on a tiny random model: loading, audio conditioning, continuation, camera, frame counts."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import PIL.Image
import pytest
import torch
from diffusers import WanImageToVideoPipeline, WanTransformer3DModel

from farm.avatar.camera import render_camera_video
from farm.avatar.wan_audio.pipeline_wan_audio import WanAudioPipeline
from farm.avatar.wan_audio.tiny import TINY_TRANSFORMER, tiny_components
from farm.shotlist.types import CameraMove, CameraSpec
from tests.tiny_wan import SIZE, portrait, render, speech, tiny_pipeline


@pytest.fixture(scope="module")
def pipeline() -> WanAudioPipeline:
    return tiny_pipeline()


def test_saved_and_reloaded_pipeline_renders_identical_frames(pipeline: WanAudioPipeline, tmp_path: Path) -> None:
    pipeline.save_pretrained(tmp_path / "model")

    reloaded = WanAudioPipeline.from_pretrained(tmp_path / "model", local_files_only=True)

    assert type(reloaded.transformer).__name__ == "WanAudioTransformer3DModel"
    np.testing.assert_array_equal(render(reloaded), render(pipeline))


def test_identical_audio_gives_identical_frames(pipeline: WanAudioPipeline) -> None:
    first = render(pipeline, audio=speech(9, seed=1))
    second = render(pipeline, audio=speech(9, seed=1))

    np.testing.assert_array_equal(first, second)


def test_different_audio_gives_different_frames(pipeline: WanAudioPipeline) -> None:
    first = render(pipeline, audio=speech(9, seed=1))
    second = render(pipeline, audio=speech(9, seed=2))

    assert np.abs(first.astype(int) - second.astype(int)).mean() > 0.05


def test_zeroed_audio_adapter_renders_exactly_like_diffusers_image_to_video() -> None:
    """With the audio value projections at zero the model is the plain Wan2.1 I2V path, bit for bit."""
    components = tiny_components(seed=3)
    audio_model = components["transformer"]
    with torch.no_grad():
        for block in audio_model.blocks:
            block.attn2.to_v_audio.weight.zero_()
            block.attn2.to_v_audio.bias.zero_()
    plain_config = {k: v for k, v in TINY_TRANSFORMER.items() if not k.startswith("audio_")}
    inner_dim = plain_config["num_attention_heads"] * plain_config["attention_head_dim"]
    plain_model = WanTransformer3DModel(**plain_config, added_kv_proj_dim=inner_dim).eval()
    plain_model.load_state_dict({k: v for k, v in audio_model.state_dict().items() if "audio" not in k})
    reference = WanImageToVideoPipeline(
        tokenizer=components["tokenizer"],
        text_encoder=components["text_encoder"],
        vae=components["vae"],
        scheduler=components["scheduler"],
        image_processor=components["image_processor"],
        image_encoder=components["image_encoder"],
        transformer=plain_model,
    )
    reference.set_progress_bar_config(disable=True)
    image = PIL.Image.fromarray(portrait())

    ours = render(
        WanAudioPipeline(**components),
        image=image,
        text_guidance_scale=5.0,
        audio_guidance_scale=1.0,
        guidance_batch=False,
        output_type="latent",
    )
    theirs = reference(
        image=image,
        prompt="a man speaks calmly in an office",
        negative_prompt="blurry low quality",
        height=SIZE,
        width=SIZE,
        num_frames=9,
        num_inference_steps=2,
        guidance_scale=5.0,
        generator=torch.Generator().manual_seed(0),
        output_type="latent",
    ).frames

    torch.testing.assert_close(ours, theirs, rtol=0, atol=0)


def test_continuation_frames_change_the_first_frames_of_the_next_shot(pipeline: WanAudioPipeline) -> None:
    previous = render(pipeline, num_frames=13, seed=5, image=portrait(seed=9))
    fresh = render(pipeline, num_frames=9)

    continued = render(pipeline, num_frames=9, continuation_frames=previous[-5:])

    assert continued.shape == fresh.shape == (9, SIZE, SIZE, 3)
    assert np.abs(continued[:2].astype(int) - fresh[:2].astype(int)).mean() > 0.5


def test_camera_move_pulls_the_shot_toward_its_camera_reference_video(pipeline: WanAudioPipeline) -> None:
    image = portrait()
    move = CameraSpec(CameraMove.PUSH_IN, 1.0)
    camera = list(render_camera_video(image, move, 9, SIZE, SIZE))
    camera_latents = pipeline.encode_frames(camera, torch.device("cpu"))

    free = render(pipeline, image=image, num_inference_steps=4, output_type="latent")
    guided = render(
        pipeline,
        image=image,
        num_inference_steps=4,
        output_type="latent",
        camera_video=iter(camera),
        camera_strength=0.25,
    )

    def distance(latents: torch.Tensor) -> float:
        return float((latents - camera_latents).abs().mean())

    assert distance(guided) < 0.7 * distance(free)


@pytest.mark.parametrize("frames", [1, 6, 10])
def test_any_frame_count_renders_exactly_that_many_frames(pipeline: WanAudioPipeline, frames: int) -> None:
    assert render(pipeline, num_frames=frames).shape == (frames, SIZE, SIZE, 3)


def test_frames_stream_to_the_callback_in_order_and_match_the_collected_result(pipeline: WanAudioPipeline) -> None:
    chunks: list[np.ndarray] = []

    streamed = render(pipeline, num_frames=10, frame_callback=chunks.append, decode_chunk_latents=1)

    assert streamed is None
    assert len(chunks) > 1
    np.testing.assert_array_equal(np.concatenate(chunks), render(pipeline, num_frames=10))
