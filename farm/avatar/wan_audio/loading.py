"""Load a WanAudioPipeline from its directory and pull the speed levers a manifest asks for."""

from __future__ import annotations

import os
from pathlib import Path

import torch

from farm.avatar.wan_audio.pipeline_wan_audio import WanAudioPipeline
from farm.avatar.wan_audio.render_params import SpeedLevers

FULL_PRECISION_COMPONENTS = ("vae", "image_encoder", "audio_encoder")
"""Kept in float32 whatever the DiT's dtype: they are small, and the VAE is visibly worse in bfloat16."""


def compute_dtype(levers: SpeedLevers, device: str) -> torch.dtype:
    if levers.dtype == "auto":
        return torch.bfloat16 if torch.device(device).type == "cuda" else torch.float32
    return getattr(torch, levers.dtype)


def load_pipeline(weights: Path, device: str, levers: SpeedLevers) -> WanAudioPipeline:
    """``from_pretrained(weights, local_files_only=True)``, then dtype, placement and speed levers."""
    dtype = compute_dtype(levers, device)
    dtypes = {"default": dtype, **dict.fromkeys(FULL_PRECISION_COMPONENTS, torch.float32)}
    pipeline = WanAudioPipeline.from_pretrained(str(weights), local_files_only=True, dtype=dtypes)
    pipeline.set_progress_bar_config(disable=True)
    if levers.lora:
        fuse_lora(pipeline, _lora_path(weights, levers.lora), levers.lora_scale)
    place(pipeline, device, levers.offload)
    if levers.attention_backend:
        pipeline.transformer.set_attention_backend(levers.attention_backend)
    if levers.step_cache_threshold is not None:
        from diffusers.hooks import FirstBlockCacheConfig

        pipeline.transformer.enable_cache(FirstBlockCacheConfig(threshold=levers.step_cache_threshold))
    if levers.vae_tiling:
        pipeline.vae.enable_tiling()
    if levers.vae_slicing:
        pipeline.vae.enable_slicing()
    if levers.compile == "regional":
        pipeline.transformer.compile_repeated_blocks(fullgraph=True)
    return pipeline


def place(pipeline: WanAudioPipeline, device: str, offload: str) -> None:
    if offload == "model":
        pipeline.enable_component_offload(device)
    elif offload == "sequential":
        pipeline.enable_sequential_cpu_offload(device=device)
    else:
        pipeline.to(device)


def fuse_lora(pipeline: WanAudioPipeline, path: Path, scale: float) -> None:
    """Load a LoRA (diffusers, lightx2v or CausVid key layout) into the DiT and fuse it into the weights."""
    if path.is_dir():
        pipeline.load_lora_weights(str(path), adapter_name="speed")
    else:
        pipeline.load_lora_weights(str(path.parent), weight_name=path.name, adapter_name="speed")
    pipeline.fuse_lora(components=["transformer"], lora_scale=scale)
    pipeline.unload_lora_weights()


def _lora_path(weights: Path, value: str) -> Path:
    path = Path(os.path.expandvars(os.path.expanduser(value)))
    return path if path.is_absolute() else weights / path
