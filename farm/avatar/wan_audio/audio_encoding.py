"""Speech -> wav2vec2 features -> one window of audio tokens per latent frame.

wav2vec2 emits a feature about every 20 ms (hop 320 samples at 16 kHz). Video runs at its own rate (25 fps
gives two features per frame, 24 fps a little more), so features are resampled to a fixed number of tokens
per *video frame* by linear interpolation at the frame's own instants; that keeps lips aligned at any fps.
Each latent frame (four video frames after the VAE's temporal compression) then gets the tokens of its
four frames plus ``context_frames`` on each side: speech that is about to happen or has just happened
shapes the mouth too.

Long shots are encoded in overlapping chunks (self-attention over three minutes of audio would need
gigabytes); a token is kept from the chunk in which it lies farthest from an edge, so short clips give
exactly the single-pass result.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

VAE_FRAMES_PER_LATENT = 4


@dataclass(frozen=True)
class SpeechFeatures:
    """wav2vec2 features of a whole clip and the instant (seconds) each one describes."""

    times: torch.Tensor
    """(T,) float64, increasing."""
    features: torch.Tensor
    """(T, D) float32."""


def _receptive_field_and_hop(config: object) -> tuple[int, int]:
    kernels = list(config.conv_kernel)  # type: ignore[attr-defined]
    strides = list(config.conv_stride)  # type: ignore[attr-defined]
    field, jump = 1, 1
    for kernel, stride in zip(kernels, strides, strict=True):
        field += (kernel - 1) * jump
        jump *= stride
    return field, jump


@torch.no_grad()
def encode_speech(
    audio: np.ndarray,
    sample_rate: int,
    feature_extractor: object,
    audio_encoder: torch.nn.Module,
    *,
    chunk_seconds: float = 20.0,
    context_seconds: float = 1.0,
) -> SpeechFeatures:
    """Run wav2vec2 over ``audio`` (float mono) in overlapping chunks; return features with their times."""
    field, hop = _receptive_field_and_hop(audio_encoder.config)
    samples = np.asarray(audio, dtype=np.float32).reshape(-1)
    if samples.size < field:
        samples = np.pad(samples, (0, field - samples.size))
    normalised = feature_extractor(samples, sampling_rate=sample_rate, return_tensors="np").input_values[0]
    device = next(audio_encoder.parameters()).device
    dtype = next(audio_encoder.parameters()).dtype

    chunk = max(int(chunk_seconds * sample_rate) // hop * hop, hop)
    context = int(context_seconds * sample_rate) // hop * hop
    times: list[torch.Tensor] = []
    features: list[torch.Tensor] = []
    for core_start in range(0, normalised.size, chunk):
        core_end = min(core_start + chunk, normalised.size)
        start = max(core_start - context, 0)
        end = min(core_end + context, normalised.size)
        piece = normalised[start:end]
        if piece.size < field:
            piece = np.pad(piece, (0, field - piece.size))
        values = torch.from_numpy(np.ascontiguousarray(piece)).to(device=device, dtype=dtype)[None]
        hidden = audio_encoder(values).last_hidden_state[0].float().cpu()
        centres = (start + torch.arange(hidden.shape[0], dtype=torch.float64) * hop + (field - 1) / 2) / sample_rate
        last_core = core_end >= normalised.size
        keep = (centres >= core_start / sample_rate) & ((centres < core_end / sample_rate) | last_core)
        times.append(centres[keep])
        features.append(hidden[keep])
    return SpeechFeatures(times=torch.cat(times), features=torch.cat(features))


def frame_features(speech: SpeechFeatures, fps: float, num_frames: int, tokens_per_frame: int) -> torch.Tensor:
    """(num_frames, tokens_per_frame, D): features sampled at evenly spaced instants inside each frame.

    Instants before the first or after the last feature take the nearest feature (edge hold).
    """
    frame_index = torch.arange(num_frames, dtype=torch.float64)[:, None]
    offsets = (torch.arange(tokens_per_frame, dtype=torch.float64)[None, :] + 0.5) / tokens_per_frame
    instants = ((frame_index + offsets) / fps).reshape(-1)
    return _interpolate(speech.times, speech.features, instants).reshape(num_frames, tokens_per_frame, -1)


def _interpolate(source_times: torch.Tensor, values: torch.Tensor, instants: torch.Tensor) -> torch.Tensor:
    if source_times.numel() == 1:
        return values.expand(instants.numel(), -1).clone()
    clamped = instants.clamp(source_times[0], source_times[-1])
    upper = torch.searchsorted(source_times, clamped).clamp(1, source_times.numel() - 1)
    lower = upper - 1
    span = (source_times[upper] - source_times[lower]).clamp_min(1e-12)
    weight = ((clamped - source_times[lower]) / span).to(values.dtype)[:, None]
    return values[lower] * (1 - weight) + values[upper] * weight


def latent_audio_windows(per_frame: torch.Tensor, num_latents: int, context_frames: int) -> torch.Tensor:
    """(num_latents, (4 + 2 * context) * tokens_per_frame, D) audio windows, one per latent frame.

    Latent frame 0 holds video frame 0 alone (the causal VAE encodes the first frame by itself), latent
    ``j >= 1`` holds frames ``4j - 3 .. 4j``. Frame indices outside the clip are clamped to its ends.
    """
    frames, _, dim = per_frame.shape
    last_frame = torch.arange(num_latents) * VAE_FRAMES_PER_LATENT
    offsets = torch.arange(-VAE_FRAMES_PER_LATENT + 1 - context_frames, context_frames + 1)
    indices = (last_frame[:, None] + offsets[None, :]).clamp(0, frames - 1)
    return per_frame[indices].reshape(num_latents, -1, dim)


def shot_audio_windows(
    speech: SpeechFeatures,
    *,
    fps: float,
    speech_frames: int,
    prefix_frames: int,
    num_latents: int,
    tokens_per_frame: int,
    context_frames: int,
) -> torch.Tensor:
    """Audio windows for a rendered clip laid out as [prefix frames (silent) | speech frames | padding].

    The prefix holds a continued shot's motion frames, which belong to the previous shot's audio; they get
    zero features. Frames after the speech (rounding up to the VAE's 4n+1 layout) hold the last feature.
    """
    per_frame = frame_features(speech, fps, speech_frames, tokens_per_frame)
    if prefix_frames:
        silent = per_frame.new_zeros(prefix_frames, tokens_per_frame, per_frame.shape[-1])
        per_frame = torch.cat([silent, per_frame])
    rendered_frames = (num_latents - 1) * VAE_FRAMES_PER_LATENT + 1
    if per_frame.shape[0] < rendered_frames:
        hold = per_frame[-1:].expand(rendered_frames - per_frame.shape[0], -1, -1)
        per_frame = torch.cat([per_frame, hold])
    return latent_audio_windows(per_frame[:rendered_frames], num_latents, context_frames)


def latent_frames_for(pixel_frames: int) -> int:
    """Latent frames that cover ``pixel_frames`` video frames (the VAE decodes 4n+1 frames from n+1)."""
    return math.ceil(max(pixel_frames - 1, 0) / VAE_FRAMES_PER_LATENT) + 1
