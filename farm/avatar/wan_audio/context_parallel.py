"""Run one shot's DiT over N processes: diffusers' Ulysses context parallelism for the Wan audio model.

Every rank runs the whole pipeline with the same seed; inside each transformer forward the token sequence
is split N ways (the model's ``_cp_plan``), self-attention trades sequence shards for head shards with an
all-to-all (Ulysses), and the output is gathered, so every rank ends each step with the same latents and
rank 0 writes the frames. Ulysses, not ring: diffusers' ring attention needs the attention op to return its
log-sum-exp, which the native (SDPA) backend, the only one that runs on a CPU, does not.

diffusers' ``enable_parallelism`` picks the device as ``rank % accelerator count``, which divides by zero
on a machine without an accelerator; there this module builds the same config, mesh and hooks itself, so
the CPU (gloo) run exercises exactly the attention and sharding code a GPU (NCCL) run uses.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.distributed as dist
from diffusers.hooks.context_parallel import apply_context_parallel
from diffusers.models._modeling_parallel import ContextParallelConfig, ParallelConfig
from diffusers.models.attention import AttentionModuleMixin
from torch.distributed.device_mesh import init_device_mesh

from farm.avatar.wan_audio.transformer_wan_audio import WanAudioTransformer3DModel


@dataclass(frozen=True)
class ContextParallelFit:
    """Whether a shot's token grid and the model's heads split ``degree`` ways, and if not, why."""

    degree: int
    reason: str | None

    @property
    def fits(self) -> bool:
        return self.reason is None


def context_parallel_fit(
    transformer_config: dict[str, object], height: int, width: int, degree: int, vae_scale: int = 8
) -> ContextParallelFit:
    """Check the two things Ulysses needs: heads divisible by ``degree``, and tokens per latent frame too."""
    heads = int(transformer_config["num_attention_heads"])  # type: ignore[call-overload]
    _, patch_h, patch_w = transformer_config["patch_size"]  # type: ignore[misc]
    tokens_per_frame = (height // vae_scale // patch_h) * (width // vae_scale // patch_w)
    if degree < 2:
        return ContextParallelFit(degree, f"degree {degree}: context parallel needs at least 2 processes")
    if heads % degree:
        return ContextParallelFit(degree, f"{heads} attention heads do not split over {degree} processes")
    if tokens_per_frame % degree:
        return ContextParallelFit(
            degree, f"{height}x{width} has {tokens_per_frame} tokens per latent frame, not divisible by {degree}"
        )
    return ContextParallelFit(degree, None)


def enable_context_parallel(transformer: WanAudioTransformer3DModel, degree: int) -> None:
    """Split ``transformer``'s forward over the ``degree`` ranks of the initialised default process group."""
    if not dist.is_initialized():
        raise RuntimeError("context parallel needs torch.distributed initialised (one process per GPU)")
    if dist.get_world_size() != degree:
        raise RuntimeError(f"context parallel degree {degree} but {dist.get_world_size()} processes in the group")
    config = ContextParallelConfig(ulysses_degree=degree)
    if torch.accelerator.device_count() > 0:
        transformer.enable_parallelism(config=config)
        return
    parallel = ParallelConfig(context_parallel_config=config)
    mesh = init_device_mesh("cpu", config.mesh_shape, mesh_dim_names=config.mesh_dim_names)
    parallel.setup(dist.get_rank(), degree, torch.device("cpu"), mesh=mesh)
    transformer._parallel_config = parallel
    for module in transformer.modules():
        if isinstance(module, AttentionModuleMixin) and hasattr(module.processor, "_parallel_config"):
            module.processor._parallel_config = parallel
    apply_context_parallel(transformer, config, transformer._cp_plan)


__all__ = ["ContextParallelFit", "context_parallel_fit", "enable_context_parallel"]
