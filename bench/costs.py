"""Placement on GPUs of different speeds (issue 19 part 3): one job of varied shots on a fake cluster of a 1x
and a 3x GPU node, with the learned-cost placement and with the least-loaded worker, side by side.

Columns: makespan (first worker ready to last shot done), the ideal (tests/cost_farm.py: the fluid bound from
the costs learned over the run, and at least the longest shot on the fastest GPU), how far over it, the ETA
read after ``--eta-after`` shots against the real rest of the run, and how the frames split between the GPUs.
Target: within 10 % of the ideal and the ETA within 15 %.

    python bench/costs.py [--shots 60] [--seconds-per-frame 0.08] [--min-frames 4 --max-frames 20] [--seeds 19]
                           [--long-last 0]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

os.environ.setdefault("RAY_AUTH_MODE", "disabled")
os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tests.cost_farm import MixedRun, mixed_speed_cluster, render_mixed  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shots", type=int, default=60)
    parser.add_argument("--seconds-per-frame", type=float, default=0.08)
    parser.add_argument("--min-frames", type=int, default=4)
    parser.add_argument("--max-frames", type=int, default=20)
    parser.add_argument("--eta-after", type=int, default=10)
    parser.add_argument("--long-last", type=int, default=0, help="the last N shots are 3x the longest")
    parser.add_argument("--seeds", default="19", help="comma-separated shot-list seeds, one pair of runs each")
    args = parser.parse_args()
    print(f"{'seed':>4} {'placement':<12} {'makespan':>9} {'ideal':>7} {'over':>7} {'ETA':>7} {'real':>7} "
          f"{'ETA err':>8}  frames 3x:1x")  # fmt: skip
    with mixed_speed_cluster() as cluster, tempfile.TemporaryDirectory(prefix="farm-costs-") as scratch:
        for seed in (int(value) for value in args.seeds.split(",")):
            for placement in (True, False):
                root = Path(scratch) / f"{seed}-{placement}"
                run = render_mixed(
                    root, cluster, placement=placement, shots=args.shots, seconds_per_frame=args.seconds_per_frame,
                    min_frames=args.min_frames, max_frames=args.max_frames, eta_after=args.eta_after, seed=seed,
                    long_last=args.long_last,
                )  # fmt: skip
                print(_row(seed, "learned" if placement else "least-loaded", run), flush=True)


def _row(seed: int, name: str, run: MixedRun) -> str:
    split = f"{run.frames_by_gpu.get('fake-3x', 0)}:{run.frames_by_gpu.get('fake-1x', 0)}"
    eta = f"{run.eta:7.2f}" if run.eta is not None else f"{'-':>7}"
    return (
        f"{seed:>4} {name:<12} {run.makespan:8.2f}s {run.ideal:6.2f}s {run.over_ideal:+7.1%} {eta} "
        f"{run.eta_actual:7.2f} {run.eta_error:8.1%}  {split}"
    )


if __name__ == "__main__":
    main()
