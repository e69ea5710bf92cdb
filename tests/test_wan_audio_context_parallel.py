"""One shot on two processes (Ulysses context parallel over gloo on 127.0.0.1) renders the one-process frames.

Tolerance: latents within 1e-4 of the one-process render (they differ only by float summation order,
about 2e-6 measured), decoded uint8 frames within one level.
"""

from __future__ import annotations

import os
import socket
import time
from pathlib import Path

import numpy as np
import pytest
import torch.distributed as dist
import torch.multiprocessing as mp

from farm.avatar.wan_audio.context_parallel import context_parallel_fit, enable_context_parallel
from farm.avatar.wan_audio.tiny import TINY_TRANSFORMER
from tests.tiny_wan import render, speech, tiny_pipeline

TWO_SPEAKERS = dict(speaker_regions=[(0.0, 0.0, 0.5, 1.0), (0.5, 0.0, 1.0, 1.0)], audio=[speech(9, 1), speech(9, 2)])


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _renders(pipeline) -> dict[str, np.ndarray]:  # type: ignore[no-untyped-def]
    return dict(
        latents=render(pipeline, output_type="latent").numpy(),
        frames=render(pipeline),
        two_speakers=render(pipeline, **TWO_SPEAKERS),
    )


def _rank_main(rank: int, world: int, port: int, out: str) -> None:
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    dist.init_process_group("gloo", rank=rank, world_size=world)
    try:
        pipeline = tiny_pipeline(0)
        enable_context_parallel(pipeline.transformer, world)
        seen: list[int] = []
        pipeline.transformer.blocks[0].register_forward_pre_hook(lambda _, args: seen.append(args[0].shape[1]))
        renders = _renders(pipeline)
        if rank == 0:
            np.savez(out, block_tokens=np.array(seen), **renders)
    finally:
        dist.destroy_process_group()


def test_two_process_context_parallel_render_equals_one_process(tmp_path: Path) -> None:
    out = tmp_path / "rank0.npz"
    context = mp.start_processes(
        _rank_main, args=(2, _free_port(), str(out)), nprocs=2, join=False, start_method="spawn"
    )
    deadline = time.monotonic() + 180
    while not context.join(timeout=1):
        assert time.monotonic() < deadline, "context-parallel ranks did not finish in 180 s"
    single = _renders(tiny_pipeline(0))
    parallel = np.load(out)

    tokens_per_shot = 3 * (32 // 8 // 2) ** 2
    assert set(parallel["block_tokens"]) == {tokens_per_shot // 2}, "each rank's blocks saw half the tokens"
    np.testing.assert_allclose(parallel["latents"], single["latents"], atol=1e-4, rtol=0)
    for name in ("frames", "two_speakers"):
        difference = np.abs(parallel[name].astype(int) - single[name].astype(int))
        assert difference.max() <= 1, f"{name}: frames differ by {difference.max()} levels"


def test_fit_names_what_does_not_split() -> None:
    assert context_parallel_fit(TINY_TRANSFORMER, 32, 32, 2).fits
    assert "attention heads" in str(context_parallel_fit(TINY_TRANSFORMER, 32, 32, 4).reason)
    six_heads = {**TINY_TRANSFORMER, "num_attention_heads": 6}
    assert "4 tokens per latent frame" in str(context_parallel_fit(six_heads, 32, 32, 3).reason)
    assert context_parallel_fit(six_heads, 48, 32, 3).fits


def test_enable_needs_an_initialised_group() -> None:
    with pytest.raises(RuntimeError, match="initialised"):
        enable_context_parallel(tiny_pipeline(0).transformer, 2)
