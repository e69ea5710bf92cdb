"""The manifest's ``render:`` parameters for the wan_audio adapter, checked and typed (no torch import).

Two kinds live side by side. *Sampling* parameters change the pixels (window, overlap, blend, camera
strength, flow shift). *Speed levers* change how fast and in how much memory the same computation runs
(dtype, compilation, attention kernel, step cache, VAE tiling, offload); a step-distilled LoRA is both.
All of them are part of every cache key, because the engine hashes the whole mapping.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

DTYPES = ("auto", "bfloat16", "float16", "float32", "float8")
COMPILE_MODES = ("none", "regional")
OFFLOAD_MODES = ("none", "model", "sequential")
BLEND_SCHEMES = ("log", "linear")


class RenderParamsError(ValueError):
    """A render parameter is unknown or out of range; the message names it and says what is allowed."""


@dataclass(frozen=True)
class SpeedLevers:
    """How the pipeline is loaded and run; changing one means reloading the pipeline."""

    dtype: str = "auto"
    """"auto" is bfloat16 on CUDA and float32 on the CPU (where bfloat16 matmuls are slow); "float8" stores the
    DiT's weights in float8_e4m3fn (half bfloat16's memory) and computes each layer in the "auto" dtype."""
    compile: str = "none"
    """"regional" compiles each DiT block once with torch.compile (diffusers' compile_repeated_blocks)."""
    attention_backend: str | None = None
    """A diffusers attention backend name ("flash", "_flash_3", "sage", "_native_cudnn", ...); None = SDPA."""
    step_cache_threshold: float | None = None
    """diffusers FirstBlockCache threshold (about 0.05-0.1); None disables the step cache."""
    step_cache_max_windows: int = 4
    """The step cache keeps one set of residuals per window, so long shots skip it (memory would grow)."""
    vae_tiling: bool = False
    vae_slicing: bool = False
    lora: str | None = None
    """A step-distilled LoRA (lightx2v / CausVid style) fused at load; relative paths are in the weights dir."""
    lora_scale: float = 1.0
    offload: str = "none"
    """"model": each component visits the GPU only while it runs; "sequential": layer by layer (slowest)."""


@dataclass(frozen=True)
class RenderParams:
    window_latent_frames: int = 21
    overlap_latent_frames: int = 5
    blend: str = "log"
    camera_strength: float = 0.85
    """Share of the schedule that runs when a camera move initialises the latents (1.0 ignores the move)."""
    flow_shift: float | None = None
    """Overrides the scheduler's timestep shift (distilled LoRAs often want a lower one)."""
    guidance_batch: bool = True
    """Run the guidance passes as one batch; False runs them one by one (less memory, slower)."""
    decode_chunk_latents: int = 4
    levers: SpeedLevers = field(default_factory=SpeedLevers)

    @classmethod
    def from_mapping(cls, raw: Mapping[str, Any]) -> RenderParams:
        """Parse ``render:`` (with any low-memory overlay already laid over it)."""
        lever_names = {f.name for f in dataclasses.fields(SpeedLevers)}
        own_names = {f.name for f in dataclasses.fields(cls)} - {"levers"}
        unknown = sorted(set(raw) - lever_names - own_names)
        if unknown:
            allowed = ", ".join(sorted(lever_names | own_names))
            raise RenderParamsError(f"unknown render parameter(s) {', '.join(unknown)}; allowed: {allowed}")
        levers = SpeedLevers(**{k: v for k, v in raw.items() if k in lever_names})
        params = cls(**{k: v for k, v in raw.items() if k in own_names}, levers=levers)
        params.check()
        return params

    def check(self) -> None:
        levers = self.levers
        _choice("dtype", levers.dtype, DTYPES)
        _choice("compile", levers.compile, COMPILE_MODES)
        _choice("offload", levers.offload, OFFLOAD_MODES)
        _choice("blend", self.blend, BLEND_SCHEMES)
        if self.window_latent_frames < 2:
            raise RenderParamsError(f"window_latent_frames must be at least 2, got {self.window_latent_frames}")
        if not 0 <= self.overlap_latent_frames < self.window_latent_frames:
            raise RenderParamsError(
                f"overlap_latent_frames must be within [0, window_latent_frames), got {self.overlap_latent_frames}"
            )
        if not 0.0 < self.camera_strength <= 1.0:
            raise RenderParamsError(f"camera_strength must be within (0, 1], got {self.camera_strength}")
        if self.decode_chunk_latents < 1:
            raise RenderParamsError(f"decode_chunk_latents must be at least 1, got {self.decode_chunk_latents}")
        if levers.step_cache_threshold is not None and levers.step_cache_threshold <= 0:
            raise RenderParamsError(f"step_cache_threshold must be positive, got {levers.step_cache_threshold}")


def _choice(name: str, value: object, allowed: tuple[str, ...]) -> None:
    if value not in allowed:
        raise RenderParamsError(f"{name} must be one of {', '.join(allowed)}, got {value!r}")
