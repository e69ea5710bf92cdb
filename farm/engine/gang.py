"""Whether a shot runs on one GPU or as one N-GPU context-parallel gang, and where a gang is placed.

N one-GPU shots keep every GPU at full efficiency; one N-GPU shot finishes sooner but loses the scaling
efficiency the cost model measured (all-to-alls, the unsplit parts of the pipeline). So a gang pays only
when GPUs would otherwise idle: a shot long enough to outlast the rest of the queue spread over the farm,
or the tail of a night. ``choose_gpus`` compares the predicted end of the night both ways and takes a gang
only where it is strictly earlier. Pure: no Ray, no database, tested on its own; ``gang_bundles`` is the
placement-group shape (``STRICT_PACK``: all N GPUs on one node, the all-to-all stays on NVLink).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from farm.catalog import ContextParallel

GANG_STRATEGY = "STRICT_PACK"


@dataclass(frozen=True)
class GpuChoice:
    """How many GPUs the shot takes and the predicted end of the night that choice gives, with why."""

    gpus: int
    night_seconds: float
    reason: str


def night_seconds(shot_seconds: float, queued_seconds: float, gpus: int, degree: int, efficiency: float) -> float:
    """Predicted makespan: the longer of the shot itself and all the work spread evenly over the GPUs.

    A gang of ``degree`` GPUs renders the shot in ``shot_seconds / (degree * efficiency)`` of wall time but
    holds ``degree`` GPUs for it, so it adds ``shot_seconds / efficiency`` GPU-seconds to the night.
    """
    gang_wall = shot_seconds / (degree * efficiency)
    gpu_seconds = queued_seconds + shot_seconds / efficiency
    return max(gang_wall, gpu_seconds / gpus)


def choose_gpus(
    frames: int,
    shot_seconds: float,
    queued_seconds: float,
    free_gpus: int,
    policy: ContextParallel | None,
    efficiency: Mapping[int, float],
) -> GpuChoice:
    """One GPU, or the degree that ends the night soonest; ``efficiency`` is the measured scaling per degree.

    ``shot_seconds`` is the learned one-GPU cost of the shot; ``queued_seconds`` the one-GPU cost of
    everything else still to render; ``free_gpus`` the GPUs of one node this shot could have. A degree
    without a measurement is not tried: scaling is measured, never assumed.
    """
    single = night_seconds(shot_seconds, queued_seconds, max(free_gpus, 1), 1, 1.0)
    best = GpuChoice(1, single, "one GPU")
    if policy is None:
        return GpuChoice(1, single, "the model has no context_parallel section")
    if frames < policy.min_frames:
        return GpuChoice(1, single, f"{frames} frames, context parallel from {policy.min_frames}")
    for degree in sorted(policy.degrees):
        if degree > free_gpus or degree not in efficiency:
            continue
        night = night_seconds(shot_seconds, queued_seconds, free_gpus, degree, efficiency[degree])
        if night < best.night_seconds:
            saved = single - night
            best = GpuChoice(degree, night, f"{degree} GPUs end the night {saved:.0f} s sooner")
    return best


def gang_bundles(gpus: int, cpus_per_gpu: int) -> list[dict[str, float]]:
    """Placement-group bundles for one gang: a GPU (and its CPUs) per rank, all on one node."""
    return [{"GPU": 1.0, "CPU": float(cpus_per_gpu)} for _ in range(gpus)]


__all__ = ["GANG_STRATEGY", "GpuChoice", "choose_gpus", "gang_bundles", "night_seconds"]
