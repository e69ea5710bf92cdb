"""The Wan2.1 image-to-video DiT with speech conditioning (the StableAvatar design, written for diffusers).

Two additions to the stock diffusers ``WanTransformer3DModel``, which this model reuses piece by piece and
whose state-dict layout it keeps (a Wan I2V checkpoint in diffusers format loads into it key for key):

* an **audio adapter**: wav2vec2 features, already cut into one window of tokens per latent frame, are
  projected to the DiT width and refined by a few blocks that are *timestep-aware* (their norms are
  modulated by the DiT's own timestep embedding, adaLN style) and *latent-aware* (each latent frame's audio
  tokens cross-attend to that frame's noisy video tokens). So the audio tokens a block sees depend on how
  far denoising has come, which is what lets the model use the audio differently early and late.
* **audio cross-attention** in every DiT block: the video tokens of latent frame ``f`` attend to the audio
  tokens of frame ``f`` only (frame-local, so lips follow the sound at the right time), through extra key
  and value projections whose result is summed with the text and image attention before the shared output
  projection. Those projections start at zero, so a freshly added adapter leaves the base model exactly as
  it was; that identity is what the tests check.

**Several speakers in one frame** (MultiTalk / InfiniteTalk's problem: whose voice moves which mouth) are
routed by region rather than learned: each speaker has a mask over the latent token grid (their side of a
two-shot). The adapter refines a speaker's audio against the video tokens of that speaker's region only,
and a video token attends to the audio of the speaker whose region it lies in (a token in no region hears
nobody). One speaker without a mask is exactly the single-speaker model.

**Context parallel** (one shot's tokens over N processes, diffusers' Ulysses attention): ``_cp_plan`` splits
the token sequence so that every rank holds the same share of *every* latent frame (``TokenLayout``), not a
run of whole frames. Frame-local audio attention and speaker routing then work on each rank unchanged, and
any latent frame count works; the per-frame token count must divide by N (``context_parallel.py``).
"""

from __future__ import annotations

import math
from typing import Any, ClassVar

import torch
from diffusers.configuration_utils import ConfigMixin, register_to_config
from diffusers.loaders import PeftAdapterMixin
from diffusers.models._modeling_parallel import ContextParallelInput, ContextParallelOutput
from diffusers.models.attention import AttentionMixin
from diffusers.models.attention_dispatch import dispatch_attention_fn
from diffusers.models.cache_utils import CacheMixin
from diffusers.models.modeling_outputs import Transformer2DModelOutput
from diffusers.models.modeling_utils import ModelMixin
from diffusers.models.normalization import FP32LayerNorm
from diffusers.models.transformers.transformer_wan import (
    WanAttention,
    WanAttnProcessor,
    WanRotaryPosEmbed,
    WanTimeTextImageEmbedding,
    WanTransformerBlock,
)
from diffusers.utils import apply_lora_scale
from torch import nn


def _attend(processor: Any, query: torch.Tensor, key: torch.Tensor, value: torch.Tensor) -> torch.Tensor:
    """(B, Lq, heads, d) x (B, Lk, heads, d) -> (B, Lq, heads * d) through the processor's attention backend."""
    out = dispatch_attention_fn(
        query, key, value, attn_mask=None, dropout_p=0.0, is_causal=False, backend=processor._attention_backend
    )
    return out.flatten(2, 3).type_as(query)


class WanAudioAttnProcessor:
    """Cross-attention over [image tokens | text tokens] plus frame-local audio attention.

    Unlike diffusers' Wan processor, the number of image tokens is passed in rather than inferred from a
    fixed 512-token text length, so any ``max_sequence_length`` works.
    """

    _attention_backend = None
    _parallel_config = None

    def __call__(
        self,
        attn: WanAudioCrossAttention,
        hidden_states: torch.Tensor,
        encoder_hidden_states: torch.Tensor,
        attention_mask: torch.Tensor | None = None,
        rotary_emb: Any = None,
        image_tokens: int = 0,
        audio_context: torch.Tensor | None = None,
        speaker_masks: torch.Tensor | None = None,
    ) -> torch.Tensor:
        image_states = encoder_hidden_states[:, :image_tokens]
        text_states = encoder_hidden_states[:, image_tokens:]
        heads = attn.heads

        query = attn.norm_q(attn.to_q(hidden_states)).unflatten(2, (heads, -1))
        key = attn.norm_k(attn.to_k(text_states)).unflatten(2, (heads, -1))
        value = attn.to_v(text_states).unflatten(2, (heads, -1))
        out = _attend(self, query, key, value)

        if image_tokens:
            image_key = attn.norm_added_k(attn.add_k_proj(image_states)).unflatten(2, (heads, -1))
            image_value = attn.add_v_proj(image_states).unflatten(2, (heads, -1))
            out = out + _attend(self, query, image_key, image_value)

        if audio_context is not None and speaker_masks is None:
            out = out + self._frame_local_audio(attn, query, audio_context)
        elif audio_context is not None and speaker_masks is not None:
            out = out + self._routed_audio(attn, query, audio_context, speaker_masks)

        out = attn.to_out[0](out)
        return attn.to_out[1](out)

    def _frame_local_audio(
        self, attn: WanAudioCrossAttention, query: torch.Tensor, audio_context: torch.Tensor
    ) -> torch.Tensor:
        """Video tokens of latent frame f attend to the audio tokens of frame f only.

        Video tokens are ordered frame-major (frame, row, column), so regrouping the sequence into
        (batch * frames, tokens per frame) pairs every frame's tokens with its own audio window.
        """
        batch, frames, audio_tokens, _ = audio_context.shape
        heads = attn.heads
        per_frame = query.shape[1] // frames
        frame_query = query.reshape(batch * frames, per_frame, heads, -1)
        audio_key = attn.to_k_audio(audio_context).reshape(batch * frames, audio_tokens, heads, -1)
        audio_value = attn.to_v_audio(audio_context).reshape(batch * frames, audio_tokens, heads, -1)
        out = _attend(self, frame_query, audio_key, audio_value)
        return out.reshape(batch, frames * per_frame, -1)

    def _routed_audio(
        self,
        attn: WanAudioCrossAttention,
        query: torch.Tensor,
        audio_context: torch.Tensor,
        speaker_masks: torch.Tensor,
    ) -> torch.Tensor:
        """Frame-local audio attention per speaker, each result kept only on that speaker's tokens.

        ``audio_context`` is (B, S, F, N, D); ``speaker_masks`` (S, tokens per frame) is 1 on the tokens of
        a latent frame that belong to speaker ``s``. A token's output depends on its own speaker's audio
        alone, which is what makes the routing testable exactly.
        """
        batch, speakers, frames = audio_context.shape[:3]
        per_frame = query.shape[1] // frames
        out = query.new_zeros(batch, frames, per_frame, query.shape[2] * query.shape[3])
        for speaker in range(speakers):
            heard = self._frame_local_audio(attn, query, audio_context[:, speaker])
            mask = speaker_masks[speaker].to(heard.dtype).view(1, 1, per_frame, 1)
            out = out + heard.view(batch, frames, per_frame, -1) * mask
        return out.reshape(batch, frames * per_frame, -1)


class WanAudioCrossAttention(WanAttention):
    """Wan's image+text cross-attention with the audio key/value projections added."""

    _default_processor_cls = WanAudioAttnProcessor
    _available_processors: ClassVar[list[Any]] = [WanAudioAttnProcessor]

    def __init__(self, dim: int, heads: int, eps: float, added_kv_proj_dim: int | None) -> None:
        super().__init__(
            dim=dim,
            heads=heads,
            dim_head=dim // heads,
            eps=eps,
            added_kv_proj_dim=added_kv_proj_dim,
            cross_attention_dim_head=dim // heads,
            processor=WanAudioAttnProcessor(),
        )
        self.to_k_audio = nn.Linear(dim, dim)
        self.to_v_audio = nn.Linear(dim, dim)
        for projection in (self.to_k_audio, self.to_v_audio):
            nn.init.zeros_(projection.weight)
            nn.init.zeros_(projection.bias)


class WanAudioTransformerBlock(WanTransformerBlock):
    """A Wan DiT block whose cross-attention also listens to the audio of its own latent frame."""

    def __init__(
        self,
        dim: int,
        ffn_dim: int,
        num_heads: int,
        qk_norm: str = "rms_norm_across_heads",
        cross_attn_norm: bool = False,
        eps: float = 1e-6,
        added_kv_proj_dim: int | None = None,
    ) -> None:
        super().__init__(dim, ffn_dim, num_heads, qk_norm, cross_attn_norm, eps, added_kv_proj_dim)
        self.attn2 = WanAudioCrossAttention(dim, num_heads, eps, added_kv_proj_dim)

    def forward(
        self,
        hidden_states: torch.Tensor,
        encoder_hidden_states: torch.Tensor,
        temb: torch.Tensor,
        rotary_emb: tuple[torch.Tensor, torch.Tensor],
        image_tokens: int = 0,
        audio_context: torch.Tensor | None = None,
        speaker_masks: torch.Tensor | None = None,
    ) -> torch.Tensor:
        shift, scale, gate, ffn_shift, ffn_scale, ffn_gate = (self.scale_shift_table + temb.float()).chunk(6, dim=1)

        normed = (self.norm1(hidden_states.float()) * (1 + scale) + shift).type_as(hidden_states)
        attended = self.attn1(normed, None, None, rotary_emb)
        hidden_states = (hidden_states.float() + attended * gate).type_as(hidden_states)

        normed = self.norm2(hidden_states.float()).type_as(hidden_states)
        attended = self.attn2(
            normed,
            encoder_hidden_states,
            None,
            None,
            image_tokens=image_tokens,
            audio_context=audio_context,
            speaker_masks=speaker_masks,
        )
        hidden_states = hidden_states + attended

        normed = (self.norm3(hidden_states.float()) * (1 + ffn_scale) + ffn_shift).type_as(hidden_states)
        fed = self.ffn(normed)
        return (hidden_states.float() + fed.float() * ffn_gate).type_as(hidden_states)


class AudioAdapterBlock(nn.Module):
    """Modulated residual, per-frame cross-attention to the video latents, modulated feed-forward."""

    def __init__(self, dim: int, num_heads: int, ffn_dim: int, eps: float = 1e-6) -> None:
        super().__init__()
        self.scale_shift_table = nn.Parameter(torch.randn(1, 6, dim) / dim**0.5)
        self.norm1 = FP32LayerNorm(dim, eps, elementwise_affine=False)
        self.norm2 = FP32LayerNorm(dim, eps, elementwise_affine=True)
        self.attn = WanAttention(
            dim=dim,
            heads=num_heads,
            dim_head=dim // num_heads,
            eps=eps,
            cross_attention_dim_head=dim // num_heads,
            processor=WanAttnProcessor(),
        )
        self.norm3 = FP32LayerNorm(dim, eps, elementwise_affine=False)
        self.ffn = nn.Sequential(nn.Linear(dim, ffn_dim), nn.GELU(approximate="tanh"), nn.Linear(ffn_dim, dim))

    def forward(self, audio: torch.Tensor, frame_tokens: torch.Tensor, temb6: torch.Tensor) -> torch.Tensor:
        """audio (B*F, N, D); frame_tokens (B*F, tokens per frame, D); temb6 (B*F, 6, D)."""
        shift, scale, gate, ffn_shift, ffn_scale, ffn_gate = (self.scale_shift_table + temb6.float()).chunk(6, dim=1)
        modulated = self.norm1(audio.float()) * (1 + scale) + shift
        audio = (audio.float() + modulated * gate).type_as(audio)
        audio = audio + self.attn(self.norm2(audio.float()).type_as(audio), frame_tokens)
        modulated = (self.norm3(audio.float()) * (1 + ffn_scale) + ffn_shift).type_as(audio)
        return (audio.float() + self.ffn(modulated).float() * ffn_gate).type_as(audio)


class TimestepAwareAudioAdapter(nn.Module):
    """wav2vec2 windows (B, F, N, audio_dim) -> audio context tokens (B, F, N, dim) for the DiT blocks."""

    def __init__(self, audio_dim: int, dim: int, num_layers: int, num_heads: int, eps: float = 1e-6) -> None:
        super().__init__()
        self.proj_in = nn.Linear(audio_dim, dim, bias=False)
        self.norm_in = nn.LayerNorm(dim)
        self.blocks = nn.ModuleList([AudioAdapterBlock(dim, num_heads, 2 * dim, eps) for _ in range(num_layers)])
        self.norm_out = FP32LayerNorm(dim, eps, elementwise_affine=False)
        self.scale_shift_table = nn.Parameter(torch.randn(1, 2, dim) / dim**0.5)
        self.proj_out = nn.Linear(dim, dim)

    def forward(
        self,
        audio_embeds: torch.Tensor,
        video_tokens: torch.Tensor,
        timestep_proj: torch.Tensor,
        temb: torch.Tensor,
        region: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """``region`` (tokens per frame,) bool: the video tokens this audio may look at (all when None)."""
        batch, frames, audio_tokens, _ = audio_embeds.shape
        audio = self.norm_in(self.proj_in(audio_embeds.to(self.proj_in.weight.dtype)))
        audio = audio.reshape(batch * frames, audio_tokens, -1)
        frame_tokens = video_tokens.reshape(batch * frames, video_tokens.shape[1] // frames, -1)
        if region is not None:
            frame_tokens = frame_tokens[:, region]
        per_frame_temb6 = timestep_proj.repeat_interleave(frames, dim=0)
        for block in self.blocks:
            audio = block(audio, frame_tokens, per_frame_temb6)
        shift, scale = (self.scale_shift_table + temb.float().unsqueeze(1)).repeat_interleave(frames, 0).chunk(2, dim=1)
        audio = self.proj_out((self.norm_out(audio.float()) * (1 + scale) + shift).type_as(audio))
        return audio.reshape(batch, frames, audio_tokens, -1)


class TokenLayout(nn.Module):
    """Reorders the frame-major token sequence so that a contiguous split gives each rank part of every frame.

    Tokens are (frame, token of frame); with ``ranks`` shares the order becomes (share, frame, token of the
    share), so rank ``r``'s contiguous slice is the ``r``-th piece of each frame's tokens. The context
    parallel plan splits this module's outputs; ``restore`` undoes the order after the gather. With one
    rank it is the identity.
    """

    def forward(
        self, tokens: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor, frames: int, ranks: int
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        if ranks == 1:
            return tokens, cos, sin
        return _share_major(tokens, frames, ranks), _share_major(cos, frames, ranks), _share_major(sin, frames, ranks)

    @staticmethod
    def restore(tokens: torch.Tensor, frames: int, ranks: int) -> torch.Tensor:
        if ranks == 1:
            return tokens
        batch, length = tokens.shape[:2]
        shares = tokens.reshape(batch, ranks, frames, length // (ranks * frames), *tokens.shape[2:])
        return shares.transpose(1, 2).reshape(tokens.shape)


def _share_major(sequence: torch.Tensor, frames: int, ranks: int) -> torch.Tensor:
    """(B, F * T, ...) in (frame, token) order -> the same tokens in (share, frame, token of share) order."""
    batch, length = sequence.shape[:2]
    if (length // frames) % ranks:
        raise ValueError(f"{length // frames} tokens per latent frame do not split into {ranks} equal shares")
    per_share = length // (frames * ranks)
    framed = sequence.reshape(batch, frames, ranks, per_share, *sequence.shape[2:])
    return framed.transpose(1, 2).reshape(sequence.shape)


class WanAudioTransformer3DModel(ModelMixin, ConfigMixin, PeftAdapterMixin, CacheMixin, AttentionMixin):
    """Wan2.1 I2V DiT + timestep-aware audio adapter + frame-local audio cross-attention.

    The first block of arguments is exactly ``WanTransformer3DModel``'s; the ``audio_*`` ones describe the
    adapter and the audio windows it was trained on (``audio_tokens_per_window`` tokens per latent frame).
    """

    _supports_gradient_checkpointing = False
    _skip_layerwise_casting_patterns: ClassVar[list[Any]] = ["patch_embedding", "condition_embedder", "norm"]
    _no_split_modules: ClassVar[list[Any]] = ["WanAudioTransformerBlock"]
    _keep_in_fp32_modules: ClassVar[list[Any]] = ["time_embedder", "scale_shift_table", "norm1", "norm2", "norm3"]
    _keys_to_ignore_on_load_unexpected: ClassVar[list[Any]] = ["norm_added_q"]
    _repeated_blocks: ClassVar[list[Any]] = ["WanAudioTransformerBlock"]
    _cp_plan: ClassVar[dict[str, Any]] = {
        "token_layout": {
            0: ContextParallelInput(split_dim=1, expected_dims=3, split_output=True),
            1: ContextParallelInput(split_dim=1, expected_dims=4, split_output=True),
            2: ContextParallelInput(split_dim=1, expected_dims=4, split_output=True),
        },
        "blocks.*": {"speaker_masks": ContextParallelInput(split_dim=1, expected_dims=2)},
        "proj_out": ContextParallelOutput(gather_dim=1, expected_dims=3),
    }

    @register_to_config
    def __init__(
        self,
        patch_size: tuple[int, ...] = (1, 2, 2),
        num_attention_heads: int = 12,
        attention_head_dim: int = 128,
        in_channels: int = 36,
        out_channels: int = 16,
        text_dim: int = 4096,
        freq_dim: int = 256,
        ffn_dim: int = 8960,
        num_layers: int = 30,
        cross_attn_norm: bool = True,
        qk_norm: str | None = "rms_norm_across_heads",
        eps: float = 1e-6,
        image_dim: int | None = 1280,
        added_kv_proj_dim: int | None = None,
        rope_max_seq_len: int = 1024,
        pos_embed_seq_len: int | None = None,
        audio_dim: int = 768,
        audio_adapter_layers: int = 2,
        audio_adapter_heads: int = 8,
        audio_tokens_per_frame: int = 2,
        audio_context_frames: int = 2,
    ) -> None:
        super().__init__()
        inner_dim = num_attention_heads * attention_head_dim
        added_kv_proj_dim = added_kv_proj_dim if added_kv_proj_dim is not None else (inner_dim if image_dim else None)

        self.rope = WanRotaryPosEmbed(attention_head_dim, patch_size, rope_max_seq_len)
        self.patch_embedding = nn.Conv3d(in_channels, inner_dim, kernel_size=patch_size, stride=patch_size)
        self.condition_embedder = WanTimeTextImageEmbedding(
            dim=inner_dim,
            time_freq_dim=freq_dim,
            time_proj_dim=inner_dim * 6,
            text_embed_dim=text_dim,
            image_embed_dim=image_dim,
            pos_embed_seq_len=pos_embed_seq_len,
        )
        self.audio_adapter = TimestepAwareAudioAdapter(audio_dim, inner_dim, audio_adapter_layers, audio_adapter_heads)
        self.blocks = nn.ModuleList(
            [
                WanAudioTransformerBlock(
                    inner_dim, ffn_dim, num_attention_heads, qk_norm, cross_attn_norm, eps, added_kv_proj_dim
                )
                for _ in range(num_layers)
            ]
        )
        self.token_layout = TokenLayout()
        self.norm_out = FP32LayerNorm(inner_dim, eps, elementwise_affine=False)
        self.proj_out = nn.Linear(inner_dim, out_channels * math.prod(patch_size))
        self.scale_shift_table = nn.Parameter(torch.randn(1, 2, inner_dim) / inner_dim**0.5)
        self.gradient_checkpointing = False

    @property
    def context_parallel_ranks(self) -> int:
        """How many processes share each forward's tokens: 1 unless context parallelism is enabled."""
        parallel = self._parallel_config
        if parallel is None or parallel.context_parallel_config is None:
            return 1
        config = parallel.context_parallel_config
        return config.ring_degree * config.ulysses_degree

    @property
    def audio_tokens_per_window(self) -> int:
        """Audio tokens per latent frame: 4 video frames plus context on each side, times tokens per frame."""
        return (4 + 2 * self.config.audio_context_frames) * self.config.audio_tokens_per_frame

    def _audio_context(
        self,
        audio_embeds: torch.Tensor,
        tokens: torch.Tensor,
        timestep_proj: torch.Tensor,
        temb: torch.Tensor,
        speaker_masks: torch.Tensor | None,
    ) -> torch.Tensor:
        """(B, F, N, D) for one speaker; (B, S, F, N, D) for several, each refined on its own region."""
        if speaker_masks is None:
            return self.audio_adapter(audio_embeds, tokens, timestep_proj, temb)
        if audio_embeds.shape[1] != speaker_masks.shape[0]:
            raise ValueError(f"{audio_embeds.shape[1]} speakers' audio but {speaker_masks.shape[0]} speaker masks")
        per_frame = tokens.shape[1] // audio_embeds.shape[2]
        if speaker_masks.shape[1] != per_frame:
            raise ValueError(f"speaker masks cover {speaker_masks.shape[1]} tokens, a latent frame has {per_frame}")
        regions = speaker_masks.to(device=tokens.device, dtype=torch.bool)
        if not bool(regions.any(dim=1).all()):
            raise ValueError("a speaker's region is empty: every speaker needs part of the frame")
        contexts = [
            self.audio_adapter(audio_embeds[:, speaker], tokens, timestep_proj, temb, region=regions[speaker])
            for speaker in range(audio_embeds.shape[1])
        ]
        return torch.stack(contexts, dim=1)

    @apply_lora_scale("attention_kwargs")
    def forward(
        self,
        hidden_states: torch.Tensor,
        timestep: torch.Tensor,
        encoder_hidden_states: torch.Tensor,
        encoder_hidden_states_image: torch.Tensor | None = None,
        audio_embeds: torch.Tensor | None = None,
        audio_keep: torch.Tensor | None = None,
        speaker_masks: torch.Tensor | None = None,
        return_dict: bool = True,
        attention_kwargs: dict[str, Any] | None = None,
    ) -> Transformer2DModelOutput | tuple[torch.Tensor]:
        """Predict the flow velocity for ``hidden_states`` (B, C, F, H, W).

        ``audio_embeds`` (B, F, N, audio_dim) are the wav2vec2 windows of each latent frame; ``audio_keep``
        (B,) is 1 for batch rows that hear the audio and 0 for rows that must not (the unconditional branch
        of audio guidance gets an all-zero audio context, not an adapter output for silence).

        With ``speaker_masks`` (S, H/p_h * W/p_w) bool, one row per speaker over a latent frame's token grid,
        ``audio_embeds`` is (B, S, F, N, audio_dim): each speaker's windows, routed to their own region.
        """
        batch, _, frames, height, width = hidden_states.shape
        p_t, p_h, p_w = self.config.patch_size
        rotary_emb = self.rope(hidden_states)

        tokens = self.patch_embedding(hidden_states).flatten(2).transpose(1, 2).contiguous()
        temb, timestep_proj, text_states, image_states = self.condition_embedder(
            timestep, encoder_hidden_states, encoder_hidden_states_image
        )
        timestep_proj = timestep_proj.unflatten(1, (6, -1))
        image_tokens = 0
        if image_states is not None:
            image_tokens = image_states.shape[1]
            text_states = torch.cat([image_states, text_states], dim=1)

        audio_context = None
        if audio_embeds is not None:
            audio_context = self._audio_context(audio_embeds, tokens, timestep_proj, temb, speaker_masks)
            if audio_keep is not None:
                keep = audio_keep.to(audio_context.dtype).view(-1, *([1] * (audio_context.dim() - 1)))
                audio_context = audio_context * keep

        ranks = self.context_parallel_ranks
        latent_frames = frames // p_t
        tokens, cos, sin = self.token_layout(tokens, *rotary_emb, latent_frames, ranks)
        for block in self.blocks:
            tokens = block(tokens, text_states, timestep_proj, (cos, sin), image_tokens, audio_context, speaker_masks)

        shift, scale = (self.scale_shift_table.to(temb.device) + temb.unsqueeze(1)).chunk(2, dim=1)
        tokens = (self.norm_out(tokens.float()) * (1 + scale) + shift).type_as(tokens)
        tokens = self.token_layout.restore(self.proj_out(tokens), latent_frames, ranks)
        tokens = tokens.reshape(batch, frames // p_t, height // p_h, width // p_w, p_t, p_h, p_w, -1)
        output = tokens.permute(0, 7, 1, 4, 2, 5, 3, 6).flatten(6, 7).flatten(4, 5).flatten(2, 3)
        if not return_dict:
            return (output,)
        return Transformer2DModelOutput(sample=output)


def _register_block_for_step_caches() -> None:
    """diffusers' step caches (FirstBlockCache, ...) look blocks up by exact class in a registry."""
    from diffusers.hooks._helpers import TransformerBlockMetadata, TransformerBlockRegistry

    TransformerBlockRegistry.register(
        model_class=WanAudioTransformerBlock,
        metadata=TransformerBlockMetadata(return_hidden_states_index=0, return_encoder_hidden_states_index=None),
    )


_register_block_for_step_caches()

__all__ = ["WanAudioTransformer3DModel"]
