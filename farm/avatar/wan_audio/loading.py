"""Load a WanAudioPipeline from its directory and pull the speed levers a manifest asks for."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import torch

from farm.avatar.wan_audio.pipeline_wan_audio import WanAudioPipeline
from farm.avatar.wan_audio.render_params import SpeedLevers
from farm.catalog import in_weights

FULL_PRECISION_COMPONENTS = ("vae", "image_encoder", "audio_encoder")
"""Kept in float32 whatever the DiT's dtype: they are small, and the VAE is visibly worse in bfloat16."""

FLOAT8 = "float8"
FLOAT8_STORAGE = torch.float8_e4m3fn
FLOAT8_KEPT = (r"audio_adapter\.proj_in",)
"""Modules kept in the compute dtype besides the DiT's own list: the audio adapter casts its input to its first
layer's weight dtype, which layerwise casting would make float8."""


def enable_float8_weights(transformer: torch.nn.Module, compute: torch.dtype) -> None:
    """Store the DiT's linear weights in float8_e4m3fn, each layer upcast to ``compute`` while it runs."""
    kept = (*transformer._skip_layerwise_casting_patterns, *FLOAT8_KEPT)
    transformer.enable_layerwise_casting(storage_dtype=FLOAT8_STORAGE, compute_dtype=compute, skip_modules_pattern=kept)


def compute_dtype(levers: SpeedLevers, device: str) -> torch.dtype:
    """What the DiT computes in; float8 weights are upcast layer by layer to the "auto" dtype."""
    if levers.dtype in ("auto", FLOAT8):
        return torch.bfloat16 if torch.device(device).type == "cuda" else torch.float32
    return getattr(torch, levers.dtype)


@dataclass(frozen=True)
class LoadedPipeline:
    """The pipeline and the levers as they were applied, for the attempt row ("how was this made")."""

    pipeline: WanAudioPipeline
    applied: Mapping[str, str | int | float | bool]


def load_pipeline(weights: Path, device: str, levers: SpeedLevers) -> WanAudioPipeline:
    """``from_pretrained(weights, local_files_only=True)``, then dtype, placement and speed levers."""
    return load_with_levers(weights, device, levers).pipeline


def load_with_levers(weights: Path, device: str, levers: SpeedLevers) -> LoadedPipeline:
    """``load_pipeline``, and what each lever became on this device (read back from the loaded modules)."""
    dtype = compute_dtype(levers, device)
    dtypes = {"default": dtype, **dict.fromkeys(FULL_PRECISION_COMPONENTS, torch.float32)}
    pipeline = WanAudioPipeline.from_pretrained(str(weights), local_files_only=True, dtype=dtypes)
    pipeline.set_progress_bar_config(disable=True)
    if levers.lora:
        fuse_lora(pipeline, in_weights(weights, levers.lora), levers.lora_scale)
    if levers.dtype == FLOAT8:
        enable_float8_weights(pipeline.transformer, dtype)
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
    return LoadedPipeline(pipeline, _applied(pipeline, levers, dtype))


def _applied(
    pipeline: WanAudioPipeline, levers: SpeedLevers, dtype: torch.dtype
) -> dict[str, str | int | float | bool]:
    transformer = pipeline.transformer
    weights_dtype = FLOAT8_STORAGE if levers.dtype == FLOAT8 else transformer.dtype
    return {
        "dtype": str(dtype).removeprefix("torch."),
        "weights_dtype": str(weights_dtype).removeprefix("torch."),
        "attention_backend": levers.attention_backend or "sdpa",
        "compile": levers.compile,
        "step_cache": f"first_block_cache {levers.step_cache_threshold:g}" if transformer.is_cache_enabled else "off",
        "vae_tiling": bool(getattr(pipeline.vae, "use_tiling", False)),
        "offload": levers.offload,
        "lora_fused": bool(levers.lora) and not any("lora" in name for name, _ in transformer.named_parameters()),
        **({"lora": levers.lora, "lora_scale": levers.lora_scale} if levers.lora else {}),
    }


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
