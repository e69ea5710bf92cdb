"""Re-run benchmark: the demo rendered once, then rendered again unchanged, side by side.

    python bench/rerun.py [--shot-list shots/demo/episode.yaml] [--work DIR]

Both runs are ``farm render`` in a fresh process (so interpreter start, imports, validation and the
database are counted, as a user would see them) against one new data directory. The second run finds
every shot in the artifact store and an intact edit with the same content key: it starts no Ray and
re-uses that edit. Prints each run's wall time, the edit the re-run re-used, and the ratio.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
FARM = Path(sys.executable).with_name("farm")


def render(shot_list: Path, data: Path) -> tuple[float, str]:
    env = {**os.environ, "FARM_DATA_DIR": str(data), "RAY_AUTH_MODE": "disabled"}
    started = time.perf_counter()
    done = subprocess.run([str(FARM), "render", str(shot_list)], env=env, cwd=ROOT, capture_output=True, text=True)
    seconds = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"farm render failed ({done.returncode}):\n{done.stdout}\n{done.stderr}")
    return seconds, done.stdout


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--shot-list", type=Path, default=ROOT / "shots" / "demo" / "episode.yaml")
    parser.add_argument("--work", type=Path, default=None, help="parent of the data dir (default: a temp folder)")
    args = parser.parse_args()
    data = Path(tempfile.mkdtemp(prefix="farm-rerun-", dir=args.work))
    try:
        first, _ = render(args.shot_list, data)
        again, log = render(args.shot_list, data)
        reused = [
            line.strip() for line in log.splitlines() if "re-used edit" in line or line.strip().startswith("video")
        ]
        print(f"first run      {first:7.1f} s   (renders every shot on Ray, assembles and checks the edit)")
        print(f"cached re-run  {again:7.1f} s   (no Ray, edit re-used)  {first / again:.0f}x faster")
        for line in reused:
            print(f"  {line}")
        if not any("re-used edit" in line for line in reused):
            print("  WARNING: the re-run did not re-use an edit")
    finally:
        shutil.rmtree(data, ignore_errors=True)


if __name__ == "__main__":
    main()
