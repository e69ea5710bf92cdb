"""Memory stays flat as a shot grows: windows for the DiT, a stream for the VAE."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def peak_render_bytes(frames: int, size: int = 64) -> int:
    """Peak RSS a render adds, measured in a fresh process (tests/wan_memory_probe.py).

    Large blocks are mmapped (MALLOC_MMAP_THRESHOLD_) so freed chunks return to the system at once and the
    high-water mark measures live memory, not allocator fragmentation.
    """
    environment = {**os.environ, "MALLOC_MMAP_THRESHOLD_": "65536", "OMP_NUM_THREADS": "1"}
    completed = subprocess.run(
        [sys.executable, "-m", "tests.wan_memory_probe", str(frames), str(size)],
        cwd=REPO,
        env=environment,
        capture_output=True,
        text=True,
        check=True,
        timeout=300,
    )
    return int(completed.stdout.strip().splitlines()[-1])


def test_a_ten_times_longer_shot_needs_less_than_twice_the_peak_memory() -> None:
    baseline = peak_render_bytes(29)
    ten_times_longer = peak_render_bytes(290)

    assert baseline > 0
    assert ten_times_longer < 2 * baseline, f"{ten_times_longer / 2**20:.1f} MiB vs {baseline / 2**20:.1f} MiB"
