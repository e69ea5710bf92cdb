"""A fake cluster of GPUs of different speeds, and one job rendered on it: makespan against the ideal, and
the ETA read part-way against the real finish (tests/test_costs.py and bench/costs.py).

Two Ray nodes advertise one GPU each; their environment names the GPU type (``FARM_GPU_TYPE``, which the
worker reports) and the speed (``FARM_TEST_SPEED``, which PatternModel divides its sleep by), so the work
is sleeps and the box's CPU load matters little. Nothing tells the scheduler the speeds: it learns them
from the attempts as they end.

The ideal makespan, from the costs learned over the whole run (``farm.db.costs``, fitted per GPU type: a
per-shot part and a per-frame part): each worker alone would need ``T_w`` seconds for every shot; working
together from the moment each became ready (offset ``o_w`` after the first) they finish, at best, when
``sum_w (T - o_w) / T_w = 1``, i.e. ``T = (1 + sum o_w / T_w) / sum 1 / T_w`` (the fluid bound). A shot is
indivisible, so the ideal is also at least the longest shot on the fastest worker.
"""

from __future__ import annotations

import random
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import ray
from ray.cluster_utils import Cluster
from sqlalchemy import select

from farm.db.costs import learned_costs
from farm.db.queries import job_detail
from farm.db.session import open_database
from farm.db.tables import Render, Shot
from farm.engine.messages import EngineEvent, EngineEventKind
from farm.engine.policy import EngineOptions
from farm.jobs.run import drive_job
from farm.jobs.submit import submit_shot_list
from farm.plan import ShotTask
from farm.settings import resolve_settings
from tests.engine_models import write_manifest
from tests.shotlists import make_project

FPS = 25
TRACK_SECONDS = 7.6
SPEEDS = {"fake-1x": 1.0, "fake-3x": 3.0}


@contextmanager
def mixed_speed_cluster(speeds: dict[str, float] = SPEEDS) -> Iterator[Cluster]:
    """A Ray cluster with one one-GPU node per GPU type, each at its speed; shut down at the end."""
    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 0, "include_dashboard": False})
    try:
        for index, (gpu_type, speed) in enumerate(speeds.items()):
            env = {"FARM_TEST_NODE": f"n{index}", "FARM_GPU_TYPE": gpu_type, "FARM_TEST_SPEED": str(speed)}
            cluster.add_node(num_cpus=1, num_gpus=1, env_vars=env)
        cluster.wait_for_nodes()
        yield cluster
    finally:
        cluster.shutdown()


def varied_shot_list(shots: int, *, seed: int, min_frames: int, max_frames: int, long_last: int = 0) -> str:
    """``shots`` shots of seeded random lengths at 64x64, each with its own prompt (none is cached); the last
    ``long_last`` in edit order are three times the longest (the end of the queue a slow GPU may take)."""
    rng = random.Random(seed)
    lines = [
        "version: 1",
        "project: Costs",
        "output: {fps: 25, width: 64, height: 64}",
        "defaults: {quality: final, model: pattern}",
        "characters: {marcus: {image: media/marcus.jpg}}",
        "audio_tracks: {sc01: {file: media/sc01_dialogue.wav}}",
        "scenes:",
        "  - id: sc01",
        "    shots:",
    ]
    for index in range(shots):
        frames = rng.randint(min_frames, max_frames) if index < shots - long_last else 3 * max_frames
        start = rng.randrange(int(TRACK_SECONDS * FPS) - frames)
        audio = f"{{track: sc01, in: {start / FPS:.2f}, out: {(start + frames) / FPS:.2f}}}"
        lines.append(f"      - {{id: s{index:03d}, character: marcus, prompt: 'shot {index}', audio: {audio}}}")
    return "\n".join(lines) + "\n"


@dataclass
class MixedRun:
    makespan: float
    """From the first worker ready to the last shot done."""
    ideal: float
    fluid: float
    longest: float
    eta_at: float
    """Seconds after the first worker was ready when ``eta_after`` shots were done and the ETA was read."""
    eta: float | None
    eta_actual: float
    """The real time from then to the last shot done."""
    shots_by_gpu: dict[str, int] = field(default_factory=dict)
    frames_by_gpu: dict[str, int] = field(default_factory=dict)

    @property
    def over_ideal(self) -> float:
        return self.makespan / self.ideal - 1.0

    @property
    def eta_error(self) -> float:
        return abs((self.eta or 0.0) - self.eta_actual) / self.eta_actual


def render_mixed(
    root: Path,
    cluster: Cluster,
    *,
    placement: bool = True,
    shots: int = 60,
    seconds_per_frame: float = 0.05,
    min_frames: int = 8,
    max_frames: int = 48,
    eta_after: int = 10,
    seed: int = 19,
    long_last: int = 0,
) -> MixedRun:
    """Render one job of ``shots`` varied shots on ``cluster`` (a fresh farm in ``root``) and measure it."""
    write_manifest(root / "models", "pattern", seconds_per_frame=seconds_per_frame)
    settings = resolve_settings(
        data_dir=root / "data", database_url=f"sqlite:///{root / 'farm.db'}", models_dir=root / "models",
        ray_address=cluster.address,
    )  # fmt: skip
    db = open_database(settings.database_url, data_dir=settings.data_dir)
    text = varied_shot_list(shots, seed=seed, min_frames=min_frames, max_frames=max_frames, long_last=long_last)
    job = submit_shot_list(db, settings, make_project(root / "project", text)).job_id
    done: list[float] = []
    reading: dict[str, float | None] = {}

    def observe(event: EngineEvent) -> None:
        if event.kind != EngineEventKind.DONE:
            return
        done.append(time.monotonic())
        if len(done) == eta_after:
            reading["at"] = done[-1]
            reading["eta"] = job_detail(db, job).job.eta_seconds

    ray.init(address=cluster.address, log_to_driver=False)
    try:
        outcome = drive_job(db, settings, job, options=EngineOptions(placement=placement), observer=observe)
    finally:
        ray.shutdown()
    try:
        return _measure(db, job, outcome, done, reading)
    finally:
        db.dispose()


def _measure(db, job: int, outcome, done: list[float], reading: dict[str, float | None]) -> MixedRun:
    assert outcome.done == len(done), (outcome, len(done))
    with db.read() as connection:
        rows = connection.execute(select(Render.c.worker, Render.c.gpu_type, Render.c.frames)).all()
    gpu_of = {worker: gpu for worker, gpu, _ in rows}
    shots_by_gpu: dict[str, int] = {}
    frames_by_gpu: dict[str, int] = {}
    for _, gpu, frames in rows:
        shots_by_gpu[gpu] = shots_by_gpu.get(gpu, 0) + 1
        frames_by_gpu[gpu] = frames_by_gpu.get(gpu, 0) + frames
    costs = learned_costs(db)
    tasks = [ShotTask.from_json(spec) for spec in _specs(db, job)]
    alone = {
        worker: sum(costs.estimate(t.model, gpu, t.width, t.height, t.frames).seconds for t in tasks)
        for worker, gpu in gpu_of.items()
    }
    makespan = outcome.steady_seconds
    offsets = {worker: makespan - outcome.worker_available_seconds[worker] for worker in alone}
    fluid = (1 + sum(offsets[w] / alone[w] for w in alone)) / sum(1 / alone[w] for w in alone)
    fastest = min(alone, key=alone.__getitem__)
    longest = offsets[fastest] + max(
        costs.estimate(t.model, gpu_of[fastest], t.width, t.height, t.frames).seconds for t in tasks
    )
    last = done[-1]
    first_ready = last - makespan
    return MixedRun(
        makespan=makespan,
        ideal=max(fluid, longest),
        fluid=fluid,
        longest=longest,
        eta_at=float(reading.get("at") or 0.0) - first_ready,
        eta=reading.get("eta"),
        eta_actual=last - float(reading.get("at") or 0.0),
        shots_by_gpu=shots_by_gpu,
        frames_by_gpu=frames_by_gpu,
    )


def _specs(db, job: int) -> list[dict]:
    with db.read() as connection:
        return [row[0] for row in connection.execute(select(Shot.c.spec).where(Shot.c.job_id == job))]
