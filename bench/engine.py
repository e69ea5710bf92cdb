"""Engine benchmark: what farm's orchestration costs and what resident workers buy, measured side by side.

(a) per-shot orchestration overhead: N shots with an instant model through farm (Ray actors, SQLite
    transitions, artifact store) vs plain Ray tasks doing the same render + encode. Target < 20 ms/shot.
(b) a model with a realistic load time (PatternModel with a load delay; a real 1.3B model takes tens of
    seconds) rendering 40 shots through farm vs a naive loop starting one process per shot, as a studio
    script would, with the same number of slots. Target: farm >= 5x faster.
(c) worker busy fraction over batch (b): time in the model's render call / time the workers were
    available (from model loaded to the last shot done). Target >= 95 %.
(d) the GPU's idle time between two shots of one worker when the next shot was already waiting, with
    480x832 frames (x264 busy at the end of each shot): from the attempts' ``gpu_idle_before``, next to
    the encoding each shot left after its model ended (``encode_after_render``). Target p99 < 0.5 s.

    python bench/engine.py [--shots-a 60] [--shots-b 40] [--workers 2] [--load-seconds 4]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from fractions import Fraction
from pathlib import Path

os.environ.setdefault("RAY_AUTH_MODE", "disabled")
os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import ray  # noqa: E402

from farm.db.session import open_database  # noqa: E402
from farm.engine.policy import EngineOptions  # noqa: E402
from farm.jobs.run import drive_job  # noqa: E402
from farm.jobs.submit import submit_shot_list  # noqa: E402
from farm.settings import resolve_settings  # noqa: E402
from tests.engine_models import write_manifest  # noqa: E402
from tests.shotlists import make_project  # noqa: E402

FPS = 25


def shot_list(shots: int, frames_per_shot: int, size: tuple[int, int] = (96, 64)) -> str:
    """A shot list of ``shots`` shots of ``frames_per_shot`` frames each, cut from the demo dialogue."""
    seconds = Fraction(frames_per_shot, FPS)
    lines = [
        "version: 1",
        "project: bench",
        f"output: {{fps: 25, width: {size[0]}, height: {size[1]}}}",
        "defaults: {quality: final, model: pattern}",
        "characters: {marcus: {image: media/marcus.jpg}}",
        "audio_tracks: {sc01: {file: media/sc01_dialogue.wav}}",
        "scenes:",
        "  - id: sc01",
        "    shots:",
    ]
    for index in range(shots):
        start = (index * Fraction(4, 25)) % 6
        lines.append(
            f"      - {{id: s{index:04d}, character: marcus, prompt: shot {index}, "
            f"audio: {{track: sc01, in: {float(start)}, out: {float(start + seconds)}}}}}"
        )
    return "\n".join(lines) + "\n"


def farm_batch(root: Path, shots: int, frames: int, workers: int, size: tuple[int, int] = (96, 64), **params: object):
    write_manifest(root / "models", "pattern", gpus=0, cpus=1, **params)
    settings = resolve_settings(
        data_dir=root / "data", database_url=f"sqlite:///{root / 'farm.db'}", models_dir=root / "models"
    )
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    db = open_database(settings.database_url)
    job = submit_shot_list(db, settings, make_project(root / "project", shot_list(shots, frames, size))).job_id
    started = time.perf_counter()
    outcome = drive_job(db, settings, job, options=EngineOptions(max_workers_per_model=workers))
    wall = time.perf_counter() - started
    db.dispose()
    assert outcome.done == shots, outcome
    return wall, outcome


@ray.remote(num_cpus=1)
def plain_render(index: int, frames: int, out_dir: str) -> int:
    """What one farm shot does, as a bare Ray task: make the model, render, encode the mp4."""
    import numpy as np

    from farm.avatar.base import RenderRequest, no_progress
    from farm.catalog import load_manifest
    from farm.media.video import ShotVideoWriter
    from farm.shotlist.types import CameraSpec
    from tests.engine_models import PatternModel

    model = PatternModel(load_manifest(Path(out_dir) / "models" / "pattern.yaml"))
    model.load("cpu")
    audio = np.zeros(frames * 16000 // FPS, np.float32)
    request = RenderRequest(
        shot_id=f"s{index}", reference_image=np.zeros((64, 64, 3), np.uint8), audio=audio, sample_rate=16000,
        prompt=f"shot {index}", negative_prompt="", camera=CameraSpec(), fps=Fraction(FPS), width=96, height=64,
        frames=frames, seed=0, steps=1, text_guidance=0, audio_guidance=0,
    )  # fmt: skip
    out = Path(out_dir) / "plain" / f"s{index}.mp4"
    with ShotVideoWriter(out, width=96, height=64, fps=Fraction(FPS), frames=frames, audio=audio) as sink:
        model.render(request, sink, no_progress)
    return frames


def plain_ray_batch(root: Path, shots: int, frames: int, workers: int) -> float:
    write_manifest(root / "models", "pattern", gpus=0, cpus=1)
    started = time.perf_counter()
    pending = [plain_render.remote(i, frames, str(root)) for i in range(shots)]
    ray.get(pending)
    return time.perf_counter() - started


NAIVE_SCRIPT = """
import sys, time
from fractions import Fraction
from pathlib import Path
sys.path.insert(0, {repo!r})
import numpy as np
import torch  # any real model script imports its framework first
from farm.avatar.base import RenderRequest, no_progress
from farm.catalog import load_manifest
from farm.avatar.registry import create_model
from farm.media.video import ShotVideoWriter
from farm.shotlist.types import CameraSpec
index, frames, root = int(sys.argv[1]), int(sys.argv[2]), Path(sys.argv[3])
model = create_model(load_manifest(root / "models" / "pattern.yaml"))
model.load("cpu")
audio = np.zeros(frames * 16000 // 25, np.float32)
request = RenderRequest(shot_id=f"s{{index}}", reference_image=np.zeros((64, 64, 3), np.uint8), audio=audio,
    sample_rate=16000, prompt=f"shot {{index}}", negative_prompt="", camera=CameraSpec(), fps=Fraction(25),
    width=96, height=64, frames=frames, seed=0, steps=1, text_guidance=0, audio_guidance=0)
with ShotVideoWriter(root / "naive" / f"s{{index}}.mp4", width=96, height=64, fps=Fraction(25), frames=frames,
                     audio=audio) as sink:
    model.render(request, sink, no_progress)
"""


def naive_batch(root: Path, shots: int, frames: int, slots: int, **params: object) -> float:
    """One process per shot (import, load the model, render, exit), ``slots`` at a time."""
    write_manifest(root / "models", "pattern", gpus=0, cpus=1, **params)
    script = root / "render_one.py"
    script.write_text(NAIVE_SCRIPT.format(repo=str(REPO)))
    started = time.perf_counter()
    running: list[subprocess.Popen] = []
    for index in range(shots):
        if len(running) >= slots:
            running.pop(0).wait()
        running.append(subprocess.Popen([sys.executable, str(script), str(index), str(frames), str(root)]))
    for process in running:
        if process.wait() != 0:
            raise SystemExit("a naive render failed")
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--shots-a", type=int, default=60)
    parser.add_argument("--shots-b", type=int, default=40)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--load-seconds", type=float, default=4.0)
    parser.add_argument("--skip-naive", action="store_true", help="skip the slow naive loop of (b)")
    args = parser.parse_args()

    ray.init(num_cpus=args.workers, include_dashboard=False, log_to_driver=False, logging_level="WARNING")
    with tempfile.TemporaryDirectory() as scratch:
        root = Path(scratch)
        frames_a = 2
        plain_ray_batch(root / "warm", 4, frames_a, args.workers)  # warm Ray's worker processes
        plain = plain_ray_batch(root / "plain", args.shots_a, frames_a, args.workers)
        farm_wall, farm_a = farm_batch(root / "a", args.shots_a, frames_a, args.workers)
        steady = farm_a.steady_seconds
        overhead_ms = (steady - plain) / args.shots_a * 1000
        print(f"(a) {args.shots_a} instant shots ({frames_a} frames, 96x64), {args.workers} slots")
        print(f"    plain Ray tasks (warm workers)  {plain:7.2f} s   {plain / args.shots_a * 1000:6.1f} ms/shot")
        print(f"    farm, workers ready -> last shot {steady:6.2f} s   {steady / args.shots_a * 1000:6.1f} ms/shot")
        print(f"    farm start-up once per job       {farm_a.startup_seconds:6.2f} s (actors created, models loaded)")
        print(f"    farm whole drive_job             {farm_wall:6.2f} s")
        print(f"    orchestration overhead {overhead_ms:+.1f} ms/shot (target < 20)")

        frames_b = 12
        params = {"load_seconds": args.load_seconds, "seconds_per_frame": 0.04}
        farm_b_wall, farm_b = farm_batch(root / "b", args.shots_b, frames_b, args.workers, **params)
        print(
            f"\n(b) {args.shots_b} shots of {frames_b} frames, model load {args.load_seconds:g} s, "
            f"render {frames_b * 0.04:.2f} s/shot, {args.workers} slots"
        )
        print(f"    farm (resident workers)     {farm_b_wall:7.2f} s")
        if not args.skip_naive:
            naive = naive_batch(root / "naive", args.shots_b, frames_b, args.workers, **params)
            print(f"    naive loop, 1 process/shot  {naive:7.2f} s")
            print(f"    farm is {naive / farm_b_wall:.1f}x faster (target >= 5x)")
        fraction = farm_b.busy_fraction
        busy = sum(farm_b.worker_busy_seconds.values())
        available = sum(farm_b.worker_available_seconds.values())
        print(
            f"\n(c) worker busy fraction over (b): {busy:.2f} s rendering / {available:.2f} s available = "
            f"{(fraction or 0) * 100:.1f} % (target >= 95 %)"
        )

        shots_d, frames_d = 24, 25
        farm_batch(root / "d", shots_d, frames_d, args.workers, size=(480, 832), seconds_per_frame=0.01)
        idle, tails = gpu_gaps(root / "d" / "farm.db")
        print(
            f"\n(d) {shots_d} shots of {frames_d} frames at 480x832 on {args.workers} workers: GPU idle between "
            f"a worker's shots when the next was waiting ({len(idle)} gaps)"
        )
        print(
            f"    GPU idle        p50 {percentile(idle, 50):6.3f} s   p99 {percentile(idle, 99):6.3f} s (target < 0.5)"
        )
        print(f"    encoding left   p50 {percentile(tails, 50):6.3f} s   p99 {percentile(tails, 99):6.3f} s "
              "(done beside the next shot's model)")  # fmt: skip
    ray.shutdown()


def gpu_gaps(database: Path) -> tuple[list[float], list[float]]:
    """The attempts' GPU idle before them (those sent to a busy worker: they waited for its slot longer than
    the slot stayed free) and the encoding every attempt left after its model ended."""
    from sqlalchemy import select

    from farm.db.tables import Render

    db = open_database(f"sqlite:///{database}")
    with db.read() as connection:
        timings = connection.execute(select(Render.c.timings).where(Render.c.state == "succeeded")).scalars().all()
    db.dispose()
    idle = [
        t["gpu_idle_before"] for t in timings if "gpu_idle_before" in t and t["waited_for_slot"] > t["gpu_idle_before"]
    ]
    return idle, [t["encode_after_render"] for t in timings]


def percentile(values: list[float], share: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(share / 100 * (len(ordered) - 1)))]


if __name__ == "__main__":
    main()
