"""Streaming encode and decode with the causal Wan VAE, so memory does not grow with the shot's length.

``AutoencoderKLWan.encode``/``decode`` already run frame by frame internally (a causal 3D convolution
carries a small cache of the previous frames from chunk to chunk) but take and return the whole video at
once: 4,500 frames at 480x832 would be 21 GB of float pixels. These generators drive the same encoder and
decoder modules chunk by chunk with their own caches and hand each piece on as soon as it exists, so a
result equals the library's whole-video call while holding only one chunk. Spatial tiling is supported
for decoding (one cache per tile, tiles blended per frame exactly as ``tiled_decode`` does).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

import torch
from diffusers import AutoencoderKLWan
from diffusers.models.autoencoders.autoencoder_kl_wan import WanCausalConv3d


def _fresh_cache(module: torch.nn.Module) -> list[torch.Tensor | None]:
    return [None] * sum(isinstance(child, WanCausalConv3d) for child in module.modules())


def _check_supported(vae: AutoencoderKLWan) -> None:
    if vae.config.patch_size is not None:
        raise ValueError("streaming VAE coding supports the Wan2.1 VAE (no patchify); this VAE patchifies")


# Adapted from diffusers.pipelines.wan.pipeline_wan_i2v.WanImageToVideoPipeline.prepare_latents (the latents_mean /
# latents_std normalisation). Differs: one helper shared by the streaming encoder and decoder below.
def latent_statistics(vae: AutoencoderKLWan, device: torch.device, dtype: torch.dtype) -> tuple[torch.Tensor, ...]:
    """(mean, 1 / std) shaped (1, z, 1, 1, 1): the DiT sees (z - mean) * (1 / std).

    The reciprocal is taken in float32 before casting, as diffusers' Wan pipelines do, so latents match
    theirs bit for bit.
    """
    shape = (1, vae.config.z_dim, 1, 1, 1)
    mean = torch.tensor(vae.config.latents_mean).view(shape).to(device, dtype)
    inverse_std = (1.0 / torch.tensor(vae.config.latents_std)).view(shape).to(device, dtype)
    return mean, inverse_std


# Adapted from diffusers.models.autoencoders.autoencoder_kl_wan.AutoencoderKLWan._encode. Differs: chunks arrive
# one at a time (a generator) instead of a whole video tensor, so memory stays flat as the shot grows.
@torch.no_grad()
def encode_video(vae: AutoencoderKLWan, chunks: Iterable[torch.Tensor]) -> torch.Tensor:
    """Normalised latent means (1, z, n + 1, h, w) of a video given as pixel chunks in [-1, 1].

    ``chunks`` are (1, 3, t, H, W): the first holds frame 0 alone, every later one four frames, which is
    the grouping the causal encoder uses (video of 4n + 1 frames). Each chunk is encoded when it arrives.
    """
    _check_supported(vae)
    cache = _fresh_cache(vae.encoder)
    latents = []
    for chunk in chunks:
        encoded = vae.encoder(chunk.to(vae.device, vae.dtype), feat_cache=cache, feat_idx=[0])
        moments = vae.quant_conv(encoded)
        latents.append(moments[:, : vae.config.z_dim])
    stacked = torch.cat(latents, dim=2).float()
    mean, inverse_std = latent_statistics(vae, stacked.device, stacked.dtype)
    return (stacked - mean) * inverse_std


def pixel_chunks(frames: Iterable[torch.Tensor]) -> Iterator[torch.Tensor]:
    """Group single frames (1, 3, 1, H, W) into the encoder's chunks: [frame 0], [1..4], [5..8], ..."""
    pending: list[torch.Tensor] = []
    first = True
    for frame in frames:
        pending.append(frame)
        if first or len(pending) == 4:
            yield torch.cat(pending, dim=2)
            pending, first = [], False
    if pending:
        raise ValueError(f"video length must be 4n + 1 frames; {len(pending)} frame(s) left over")


@torch.no_grad()
# Adapted from diffusers.models.autoencoders.autoencoder_kl_wan.AutoencoderKLWan._decode (and tiled_decode).
# Differs: frames are yielded a few latents at a time to a consumer instead of returned as one tensor.
def decode_latents(vae: AutoencoderKLWan, latents: torch.Tensor, chunk_latents: int = 4) -> Iterator[torch.Tensor]:
    """Yield decoded pixels (1, 3, t, H, W) in [-1, 1] for normalised latents, ``chunk_latents`` at a time."""
    _check_supported(vae)
    mean, inverse_std = latent_statistics(vae, vae.device, vae.dtype)
    tile_h = vae.tile_sample_min_height // vae.spatial_compression_ratio
    tile_w = vae.tile_sample_min_width // vae.spatial_compression_ratio
    height, width = latents.shape[-2:]
    tiled = vae.use_tiling and (width > tile_w or height > tile_h)
    decode_frame = _tiled_frame_decoder(vae, height, width) if tiled else _frame_decoder(vae)
    pending = []
    for index in range(latents.shape[2]):
        z = latents[:, :, index : index + 1].to(vae.device, vae.dtype) / inverse_std + mean
        pending.append(decode_frame(z, index == 0))
        if len(pending) == chunk_latents or index == latents.shape[2] - 1:
            yield torch.cat(pending, dim=2).clamp(-1.0, 1.0)
            pending = []


def _frame_decoder(vae: AutoencoderKLWan):  # type: ignore[no-untyped-def]
    cache = _fresh_cache(vae.decoder)

    def decode(z: torch.Tensor, first: bool) -> torch.Tensor:
        return vae.decoder(vae.post_quant_conv(z), feat_cache=cache, feat_idx=[0], first_chunk=first)

    return decode


def _tiled_frame_decoder(vae: AutoencoderKLWan, height: int, width: int):  # type: ignore[no-untyped-def]
    """Per-frame version of ``AutoencoderKLWan.tiled_decode``: each tile keeps its own causal cache."""
    ratio = vae.spatial_compression_ratio
    tile_h, tile_w = vae.tile_sample_min_height // ratio, vae.tile_sample_min_width // ratio
    stride_h, stride_w = vae.tile_sample_stride_height // ratio, vae.tile_sample_stride_width // ratio
    blend_h = vae.tile_sample_min_height - vae.tile_sample_stride_height
    blend_w = vae.tile_sample_min_width - vae.tile_sample_stride_width
    rows = list(range(0, height, stride_h))
    cols = list(range(0, width, stride_w))
    caches = {(i, j): _fresh_cache(vae.decoder) for i in rows for j in cols}

    def decode(z: torch.Tensor, first: bool) -> torch.Tensor:
        decoded_rows = []
        for i in rows:
            row = []
            for j in cols:
                tile = vae.post_quant_conv(z[:, :, :, i : i + tile_h, j : j + tile_w])
                row.append(vae.decoder(tile, feat_cache=caches[(i, j)], feat_idx=[0], first_chunk=first))
            decoded_rows.append(row)
        joined_rows = []
        for r, row in enumerate(decoded_rows):
            joined = []
            for c, tile in enumerate(row):
                if r > 0:
                    tile = vae.blend_v(decoded_rows[r - 1][c], tile, blend_h)
                if c > 0:
                    tile = vae.blend_h(row[c - 1], tile, blend_w)
                joined.append(tile[:, :, :, : vae.tile_sample_stride_height, : vae.tile_sample_stride_width])
            joined_rows.append(torch.cat(joined, dim=-1))
        return torch.cat(joined_rows, dim=3)[:, :, :, : height * ratio, : width * ratio]

    return decode
