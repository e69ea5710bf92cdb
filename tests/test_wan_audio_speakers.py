"""Two speakers in one frame: each voice reaches only its own region of the picture (MultiTalk's problem).

Checked on a one-block tiny DiT, where the routing is exact: the video tokens of one speaker's region
depend on that speaker's audio and on nobody else's.
"""

from __future__ import annotations

import pytest
import torch

from farm.avatar.wan_audio.tiny import TINY_TRANSFORMER
from farm.avatar.wan_audio.transformer_wan_audio import WanAudioTransformer3DModel

FRAMES, HEIGHT, WIDTH = 2, 4, 8
"""Latent frames and size; patches of 2x2 make a 2x4 token grid per frame."""
TOKEN_ROWS, TOKEN_COLUMNS = HEIGHT // 2, WIDTH // 2


@pytest.fixture(scope="module")
def transformer() -> WanAudioTransformer3DModel:
    torch.manual_seed(7)
    model = WanAudioTransformer3DModel(**{**TINY_TRANSFORMER, "num_layers": 1}).eval()
    with torch.no_grad():
        for projection in (model.blocks[0].attn2.to_k_audio, model.blocks[0].attn2.to_v_audio):
            projection.weight.normal_(0.0, 0.5)
            projection.bias.normal_(0.0, 0.1)
    return model


def halves() -> torch.Tensor:
    """(2, tokens per frame): speaker 0 on the left half of the token grid, speaker 1 on the right."""
    columns = torch.arange(TOKEN_COLUMNS).repeat(TOKEN_ROWS)
    left = columns < TOKEN_COLUMNS // 2
    return torch.stack([left, ~left])


def velocity(model: WanAudioTransformer3DModel, audio: torch.Tensor, masks: torch.Tensor | None = None) -> torch.Tensor:
    generator = torch.Generator().manual_seed(3)
    latents = torch.randn(1, 36, FRAMES, HEIGHT, WIDTH, generator=generator)
    text = torch.randn(1, 6, 32, generator=generator)
    image = torch.randn(1, 5, 8, generator=generator)
    with torch.no_grad():
        return model(
            hidden_states=latents,
            timestep=torch.tensor([500]),
            encoder_hidden_states=text,
            encoder_hidden_states_image=image,
            audio_embeds=audio,
            speaker_masks=masks,
            return_dict=False,
        )[0]


def speech(seed: int) -> torch.Tensor:
    """(1, F, N, audio_dim) windows of one speaker."""
    tokens = (4 + 2 * TINY_TRANSFORMER["audio_context_frames"]) * TINY_TRANSFORMER["audio_tokens_per_frame"]
    return torch.randn(1, FRAMES, tokens, TINY_TRANSFORMER["audio_dim"], generator=torch.Generator().manual_seed(seed))


def test_each_speakers_audio_changes_only_their_own_half_of_the_frame(transformer: WanAudioTransformer3DModel) -> None:
    masks = halves()
    both = velocity(transformer, torch.stack([speech(1), speech(2)], dim=1), masks)
    left_changed = velocity(transformer, torch.stack([speech(9), speech(2)], dim=1), masks)
    right_changed = velocity(transformer, torch.stack([speech(1), speech(9)], dim=1), masks)

    left, right = slice(0, WIDTH // 2), slice(WIDTH // 2, WIDTH)
    assert torch.equal(left_changed[..., right], both[..., right]), "speaker 0's voice moved speaker 1's side"
    assert not torch.allclose(left_changed[..., left], both[..., left]), "speaker 0's voice moved nothing"
    assert torch.equal(right_changed[..., left], both[..., left]), "speaker 1's voice moved speaker 0's side"
    assert not torch.allclose(right_changed[..., right], both[..., right]), "speaker 1's voice moved nothing"


def test_one_speaker_over_the_whole_frame_is_the_single_speaker_model(transformer: WanAudioTransformer3DModel) -> None:
    voice = speech(4)
    whole = torch.ones(1, TOKEN_ROWS * TOKEN_COLUMNS, dtype=torch.bool)

    routed = velocity(transformer, voice[:, None], whole)

    torch.testing.assert_close(routed, velocity(transformer, voice), rtol=1e-5, atol=1e-6)


def test_a_speaker_with_no_region_or_a_mask_of_the_wrong_size_is_refused(
    transformer: WanAudioTransformer3DModel,
) -> None:
    masks = halves()
    masks[1] = False
    with pytest.raises(ValueError, match="region is empty"):
        velocity(transformer, torch.stack([speech(1), speech(2)], dim=1), masks)
    with pytest.raises(ValueError, match="cover 3 tokens"):
        velocity(transformer, torch.stack([speech(1), speech(2)], dim=1), torch.ones(2, 3, dtype=torch.bool))
    with pytest.raises(ValueError, match="2 speakers' audio but 1"):
        velocity(transformer, torch.stack([speech(1), speech(2)], dim=1), torch.ones(1, 8, dtype=torch.bool))


def test_the_pipeline_routes_each_speakers_track_to_their_side_of_a_two_shot() -> None:
    """One denoising step of a one-block tiny pipeline: the latents of the right half do not move when the
    left speaker's track changes, and do when the right speaker's does."""
    from farm.avatar.wan_audio.pipeline_wan_audio import WanAudioPipeline
    from farm.avatar.wan_audio.tiny import tiny_components
    from tests.tiny_wan import portrait
    from tests.tiny_wan import speech as voice

    components = tiny_components()
    one_block = WanAudioTransformer3DModel(**{**TINY_TRANSFORMER, "num_layers": 1}).eval()
    with torch.no_grad():
        for projection in (one_block.blocks[0].attn2.to_k_audio, one_block.blocks[0].attn2.to_v_audio):
            projection.weight.normal_(0.0, 0.5)
            projection.bias.normal_(0.0, 0.1)
    pipeline = WanAudioPipeline(**{**components, "transformer": one_block})
    pipeline.set_progress_bar_config(disable=True)
    width, height, frames = 64, 32, 5
    regions = [(0.0, 0.0, 0.5, 1.0), (0.5, 0.0, 1.0, 1.0)]

    def latents(left: int, right: int) -> torch.Tensor:
        return pipeline(
            image=portrait(64)[16:48],
            audio=[voice(frames, seed=left), voice(frames, seed=right)],
            speaker_regions=regions,
            prompt="two people talk",
            height=height,
            width=width,
            num_frames=frames,
            num_inference_steps=1,
            generator=torch.Generator().manual_seed(0),
            output_type="latent",
        ).frames

    both = latents(1, 2)
    left_changed, right_changed = latents(5, 2), latents(1, 5)

    half = both.shape[-1] // 2
    assert torch.equal(left_changed[..., half:], both[..., half:])
    assert not torch.allclose(left_changed[..., :half], both[..., :half])
    assert torch.equal(right_changed[..., :half], both[..., :half])
    assert not torch.allclose(right_changed[..., half:], both[..., half:])
    with pytest.raises(ValueError, match="overlap"):
        pipeline(
            image=portrait(64)[16:48], audio=[voice(frames), voice(frames)], prompt="", height=height, width=width,
            num_frames=frames, num_inference_steps=1, speaker_regions=[(0.0, 0.0, 0.7, 1.0), (0.3, 0.0, 1.0, 1.0)],
        )  # fmt: skip
