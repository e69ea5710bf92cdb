"""The dynamic weighted sliding window and the audio windows it is fed with."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch

from farm.avatar.wan_audio.audio_encoding import (
    SpeechFeatures,
    encode_speech,
    frame_features,
    latent_audio_windows,
    latent_frames_for,
)
from farm.avatar.wan_audio.pipeline_wan_audio import GuidanceInputs, fit_image, guidance_branches
from farm.avatar.wan_audio.sliding_window import Window, WindowBlender, blend_weights, plan_windows
from tests.tiny_wan import SIZE, portrait, render, speech, tiny_pipeline


@pytest.mark.parametrize(("latents", "window", "overlap"), [(16, 6, 3), (21, 21, 5), (40, 21, 5), (7, 3, 1)])
def test_windows_cover_every_latent_frame_with_equal_lengths(latents: int, window: int, overlap: int) -> None:
    windows = plan_windows(latents, window, overlap)

    covered = torch.zeros(latents, dtype=torch.bool)
    for w in windows:
        covered[w.start : w.end] = True
    assert covered.all()
    assert windows[0].start == 0 and windows[-1].end == latents
    assert {w.length for w in windows} == {min(window, latents)}
    assert all(b.start <= a.end - overlap for a, b in itertools.pairwise(windows))


def test_a_shot_shorter_than_a_window_is_one_window() -> None:
    assert plan_windows(9, 21, 5) == [Window(0, 9)]


def test_log_weights_rise_from_zero_to_one_faster_than_a_ramp() -> None:
    log, linear = blend_weights(5, "log"), blend_weights(5, "linear")

    assert log[0] == 0 and log[-1] == 1
    assert torch.all(log[1:] > log[:-1])
    assert torch.all(log[1:-1] > linear[1:-1])


@torch.no_grad()
def test_one_window_equals_the_single_pass_over_all_latents() -> None:
    """The windowed pipeline with a single window is the plain denoising loop over the whole clip."""
    pipeline = tiny_pipeline()
    cpu = torch.device("cpu")
    windowed = render(pipeline, num_frames=13, output_type="latent", window_latent_frames=21)

    num_latents = latent_frames_for(13)
    audio = pipeline.encode_audio(speech(13), 16000, 25, 13, 0, num_latents)
    condition = pipeline.prepare_condition([fit_image(portrait(), SIZE, SIZE)], num_latents, cpu)
    text = {
        True: pipeline.encode_prompt("a man speaks calmly in an office", cpu),
        False: pipeline.encode_prompt("blurry low quality", cpu),
    }
    image = pipeline.encode_image(fit_image(portrait(), SIZE, SIZE), cpu)
    latents = pipeline.prepare_latents(num_latents, SIZE, SIZE, cpu, torch.Generator().manual_seed(0))
    guidance = GuidanceInputs(text, image, guidance_branches(3.0, 4.0), 3.0, 4.0, batch_branches=True)
    pipeline.scheduler.set_timesteps(2)
    for timestep in pipeline.scheduler.timesteps:
        velocity = pipeline.predict_window(0, latents, condition, timestep, audio, guidance)
        latents = pipeline.scheduler.step(velocity, timestep, latents, return_dict=False)[0]

    torch.testing.assert_close(windowed, latents, rtol=0, atol=0)


def test_overlapping_windows_blend_without_a_seam() -> None:
    """Two windows that disagree by D: stitched, the video jumps by D; blended over 5 frames, by < 0.4 D."""
    frames, disagreement = 11, 1.0
    first, second = Window(0, 8), Window(3, 11)
    slope = torch.linspace(0, 0.7, frames).view(1, 1, frames, 1, 1)  # content that moves smoothly

    def largest_step(overlap_scheme: str, windows: tuple[Window, Window]) -> float:
        blender = WindowBlender(torch.zeros(1, 1, frames, 2, 2), overlap_scheme)
        blender.add(windows[0], slope[:, :, windows[0].start : windows[0].end].expand(1, 1, -1, 2, 2))
        shifted = slope[:, :, windows[1].start : windows[1].end] + disagreement
        blender.add(windows[1], shifted.expand(1, 1, -1, 2, 2))
        steps = (blender.output[:, :, 1:] - blender.output[:, :, :-1]).abs().amax()
        return float(steps - 0.7 / (frames - 1))

    assert largest_step("log", (first, second)) < 0.4 * disagreement
    assert largest_step("linear", (first, second)) < 0.4 * disagreement
    assert largest_step("log", (Window(0, 8), Window(8, 11))) > 0.99 * disagreement


def test_a_long_shot_renders_through_several_windows_to_the_exact_frame_count() -> None:
    pipeline = tiny_pipeline()
    frames = render(pipeline, num_frames=47, window_latent_frames=5, overlap_latent_frames=2)

    assert len(plan_windows(latent_frames_for(47), 5, 2)) > 3
    assert frames.shape == (47, SIZE, SIZE, 3)


def test_latent_frame_windows_hold_their_own_frames_and_the_context_around_them() -> None:
    per_frame = torch.arange(21, dtype=torch.float32).view(21, 1, 1)  # feature value = frame index

    windows = latent_audio_windows(per_frame, num_latents=6, context_frames=2)

    assert windows.shape == (6, 8, 1)
    assert windows[2, :, 0].tolist() == [3, 4, 5, 6, 7, 8, 9, 10]  # frames 5..8 with 2 each side
    assert windows[0, :, 0].tolist() == [0, 0, 0, 0, 0, 0, 1, 2]  # frame 0 alone, clamped before it
    assert windows[5, :, 0].tolist() == [15, 16, 17, 18, 19, 20, 20, 20]


def test_features_are_sampled_at_each_video_frames_own_instants() -> None:
    times = torch.tensor([0.0, 1.0], dtype=torch.float64)
    speech_features = SpeechFeatures(times=times, features=torch.tensor([[0.0], [10.0]]))

    sampled = frame_features(speech_features, fps=2.0, num_frames=2, tokens_per_frame=2)

    np.testing.assert_allclose(sampled[..., 0].numpy(), [[1.25, 3.75], [6.25, 8.75]])


def test_long_speech_is_encoded_in_chunks_at_the_same_instants_as_one_pass() -> None:
    pipeline = tiny_pipeline()
    audio = speech(100)  # four seconds

    whole = encode_speech(audio, 16000, pipeline.feature_extractor, pipeline.audio_encoder, chunk_seconds=60)
    chunked = encode_speech(
        audio, 16000, pipeline.feature_extractor, pipeline.audio_encoder, chunk_seconds=1.0, context_seconds=0.5
    )
    again = encode_speech(audio, 16000, pipeline.feature_extractor, pipeline.audio_encoder, chunk_seconds=4.0)

    torch.testing.assert_close(chunked.times, whole.times)
    assert chunked.features.shape == whole.features.shape
    assert torch.all(chunked.times[1:] > chunked.times[:-1])
    torch.testing.assert_close(again.features, whole.features)  # a clip within one chunk is one pass


def test_seams_are_the_middles_of_the_window_overlaps_in_the_shots_frames() -> None:
    from farm.avatar.wan_audio.sliding_window import seam_frames

    windows = plan_windows(41, 21, 5)  # latents 0-21, 16-37 and 20-41 (the last flush with the end)

    assert seam_frames(windows, 0, 161) == [71, 111]  # latents 18.5 and 28.5: 4 * n - 3
    assert seam_frames(windows, 5, 156) == [66, 106]
    assert seam_frames(plan_windows(21, 21, 5), 0, 81) == []
