"""Benchmark context parallel: seconds per denoising step of one shot on 1 vs N processes, side by side.

    python bench/context_parallel.py                 # CPU, gloo: the tiny model on a larger token grid
    python bench/context_parallel.py --ranks 2 4     # more degrees (heads must divide: tiny has 2)

Each rank runs one thread, so N ranks use N cores: the ratio is what N devices would give if the
all-to-alls were free, less what they cost on gloo. On a CPU this checks the mechanism and the
communication overhead, not the GPU scaling (issue 19 targets >= 85 % at 8 GPUs, measured on GPUs).
"""

from __future__ import annotations

import argparse
import os
import socket
import sys
import tempfile
import time
from pathlib import Path

import torch
import torch.distributed as dist
import torch.multiprocessing as mp

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def _step_inputs(size: int, latent_frames: int, rows: int) -> dict[str, torch.Tensor]:
    """One guidance batch of the tiny transformer at ``size`` pixels and ``latent_frames`` latent frames."""
    from farm.avatar.wan_audio.tiny import TINY_TRANSFORMER

    generator = torch.Generator().manual_seed(0)
    latent = size // 8
    tokens = (4 + 2 * TINY_TRANSFORMER["audio_context_frames"]) * TINY_TRANSFORMER["audio_tokens_per_frame"]
    return dict(
        hidden_states=torch.randn(rows, 36, latent_frames, latent, latent, generator=generator),
        timestep=torch.full((rows,), 500.0),
        encoder_hidden_states=torch.randn(rows, 16, 32, generator=generator),
        encoder_hidden_states_image=torch.randn(rows, 17, 8, generator=generator),
        audio_embeds=torch.randn(rows, latent_frames, tokens, 16, generator=generator),
    )


def _seconds_per_step(ranks: int, size: int, latent_frames: int, steps: int) -> float:
    from farm.avatar.wan_audio.context_parallel import enable_context_parallel
    from farm.avatar.wan_audio.tiny import tiny_components

    transformer = tiny_components(0)["transformer"]
    if ranks > 1:
        enable_context_parallel(transformer, ranks)  # type: ignore[arg-type]
    inputs = _step_inputs(size, latent_frames, rows=3)
    with torch.no_grad():
        transformer(**inputs, return_dict=False)
        if ranks > 1:
            dist.barrier()
        start = time.perf_counter()
        for _ in range(steps):
            transformer(**inputs, return_dict=False)
        return (time.perf_counter() - start) / steps


def _rank_main(rank: int, ranks: int, port: int, arguments: argparse.Namespace, out: str) -> None:
    torch.set_num_threads(1)
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    dist.init_process_group("gloo", rank=rank, world_size=ranks)
    try:
        seconds = _seconds_per_step(ranks, arguments.size, arguments.latent_frames, arguments.steps)
        if rank == 0:
            Path(out).write_text(str(seconds))
    finally:
        dist.destroy_process_group()


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--ranks", type=int, nargs="+", default=[2])
    parser.add_argument("--size", type=int, default=128, help="frame width and height in pixels")
    parser.add_argument("--latent-frames", type=int, default=21, help="21 latent frames = 81 video frames")
    parser.add_argument("--steps", type=int, default=5)
    arguments = parser.parse_args()

    torch.set_num_threads(1)
    single = _seconds_per_step(1, arguments.size, arguments.latent_frames, arguments.steps)
    tokens = arguments.latent_frames * (arguments.size // 16) ** 2
    print(f"tiny wan_audio DiT, {arguments.size}x{arguments.size}, {tokens} tokens, 3 guidance rows, CPU")
    print(f"{'ranks':>5} {'s/step':>9} {'speedup':>8} {'efficiency':>10}")
    print(f"{1:>5} {single:>9.4f} {1.0:>8.2f} {1.0:>10.0%}")
    for ranks in arguments.ranks:
        with tempfile.TemporaryDirectory() as scratch:
            out = str(Path(scratch) / "seconds")
            mp.start_processes(_rank_main, args=(ranks, _free_port(), arguments, out), nprocs=ranks)
            seconds = float(Path(out).read_text())
        print(f"{ranks:>5} {seconds:>9.4f} {single / seconds:>8.2f} {single / seconds / ranks:>10.0%}")


if __name__ == "__main__":
    main()
