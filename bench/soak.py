"""A night of faults (issue 18, part 6): a farm manager renders 500 shots while the script breaks things.

Not part of the test suite: it runs by hand, for a few minutes, and prints an audit. The farm is real:
``farm serve`` as a subprocess (the manager), a ``ray.cluster_utils.Cluster`` of fake GPU nodes, PostgreSQL
(a scratch database on the server named by --postgres, created and dropped here; ``none`` for SQLite), the
PatternModel of the tests (a short sleep per frame, real H.264 files) and an artifact store on a small tmpfs
when the script runs as root (the disk-full fault needs one). The faults, each fired when a share of the
shots is done:

    10 %  a GPU node is killed (no grace) and a new one joins
    25 %  a PostgreSQL connection storm: every farm connection terminated, 20 times in 2 s
    40 %  the manager is killed with SIGKILL, and a new one is started
    55 %  the artifact store's disk is filled, and freed once the manager says it paused (or after 20 s)
    70 %  another GPU node is killed and replaced

The audit: shots done exactly once, artifacts per cache key, partial files left, events against attempts,
jobs finished with an edit, manager processes left, and the time lost to faults (the makespan against the
GPU time the finished shots needed, spread over the GPUs).

    sudo python bench/soak.py [--shots 500 --jobs 10] [--gpus 4] [--postgres URL | none] [--keep DIR]
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

os.environ.setdefault("RAY_AUTH_MODE", "disabled")
os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")
REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))
os.environ["PYTHONPATH"] = os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep)

from manager import ShotSpec, episode_yaml  # noqa: E402
from ray.cluster_utils import Cluster  # noqa: E402
from sqlalchemy import Connection, create_engine, func, select, text  # noqa: E402
from status_scale import postgres_scratch  # noqa: E402

from farm.db.kinds import ArtifactKind, EventKind  # noqa: E402
from farm.db.retry import is_transient  # noqa: E402
from farm.db.session import Database, open_database  # noqa: E402
from farm.db.states import FINISHED_JOB_STATES, AttemptState, JobState, ShotState  # noqa: E402
from farm.db.tables import Artifact, Edit, Event, Job, Render, Shot  # noqa: E402
from farm.engine.artifacts import TEMPORARY  # noqa: E402
from farm.jobs.submit import submit_shot_list  # noqa: E402
from farm.settings import resolve_settings  # noqa: E402
from tests.engine_models import write_manifest  # noqa: E402
from tests.shotlists import make_project  # noqa: E402

T = TypeVar("T")


@dataclass
class Night:
    """The farm under test and what the script did to it."""

    root: Path
    url: str
    db: Database
    data_dir: Path
    models_dir: Path
    cluster: Cluster
    total_shots: int
    managers: list[subprocess.Popen[bytes]] = field(default_factory=list)
    faults: list[tuple[float, str]] = field(default_factory=list)
    started: float = field(default_factory=time.monotonic)

    def say(self, what: str) -> None:
        moment = time.monotonic() - self.started
        self.faults.append((moment, what))
        print(f"  {moment:6.1f} s  {what}", flush=True)

    def start_manager(self) -> None:
        log = (self.root / f"manager-{len(self.managers) + 1}.log").open("wb")
        command = [sys.executable, "-m", "farm", "serve", "--listen", "none", "--db", self.url]
        command += ["--data-dir", str(self.data_dir), "--models-dir", str(self.models_dir)]
        command += ["--address", self.cluster.address, "--idle-release", "5"]
        self.managers.append(subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, cwd=REPO))

    def read(self, query: Callable[[Connection], T]) -> T:
        """The script's own reads ride out the storm it causes, as farm's do."""
        while True:
            try:
                with self.db.read() as connection:
                    return query(connection)
            except Exception as error:
                if not is_transient(error):
                    raise
                time.sleep(0.2)

    def done_fraction(self) -> float:
        done = self.read(lambda c: c.execute(select(func.count()).where(Shot.c.state == ShotState.DONE)).scalar_one())
        return done / self.total_shots

    def jobs_finished(self) -> bool:
        states = self.read(lambda c: c.execute(select(Job.c.state)).scalars().all())
        return all(state in FINISHED_JOB_STATES for state in states)

    def held(self, prefix: str) -> bool:
        messages = self.read(
            lambda c: c.execute(select(Event.c.message).where(Event.c.kind == EventKind.JOB_HELD)).scalars().all()
        )
        return any(message.startswith(prefix) for message in messages)


# ---- the faults ----------------------------------------------------------------------------------------------


def kill_a_node(night: Night) -> None:
    victim = next(node for node in night.cluster.worker_nodes)
    night.cluster.remove_node(victim, allow_graceful=False)
    night.cluster.add_node(num_cpus=1, num_gpus=1)
    night.say("killed a GPU node (no grace); a new one joined")


def connection_storm(night: Night) -> None:
    if not night.url.startswith("postgresql"):
        night.say("connection storm skipped (SQLite)")
        return
    admin = create_engine(night.url, isolation_level="AUTOCOMMIT")
    terminated = 0
    try:
        for _ in range(20):
            with admin.connect() as connection:
                terminated += len(
                    connection.execute(
                        text(
                            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                            "WHERE datname = current_database() AND pid <> pg_backend_pid()"
                        )
                    ).all()
                )
            time.sleep(0.1)
    finally:
        admin.dispose()
    night.say(f"PostgreSQL connection storm: {terminated} connections terminated in 20 rounds over 2 s")


def restart_the_manager(night: Night) -> None:
    night.managers[-1].send_signal(signal.SIGKILL)
    night.managers[-1].wait()
    night.start_manager()
    night.say("killed the manager with SIGKILL; started a new one")


def fill_the_disk(night: Night, store: Path | None) -> None:
    if store is None:
        night.say("full disk skipped (no tmpfs: run as root)")
        return
    filler = store / "filler.bin"
    with filler.open("wb") as out:
        try:
            while True:
                out.write(b"\0" * (1 << 20))
                out.flush()
        except OSError:
            pass
    night.say(f"filled the artifact store's disk ({shutil.disk_usage(store).free} bytes left)")
    deadline = time.monotonic() + 20
    while not night.held("paused:") and time.monotonic() < deadline:
        time.sleep(0.2)
    filler.unlink()
    night.say("freed the disk" + (" after the manager paused" if night.held("paused:") else " (no pause seen in 20 s)"))


# ---- the audit ------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Check:
    name: str
    expected: object
    found: object

    @property
    def passed(self) -> bool:
        return self.expected == self.found


def audit(night: Night, store: Path, wall: float, gpus: int) -> list[Check]:
    with night.db.read() as connection:
        shots = Counter(dict(connection.execute(select(Shot.c.state, func.count()).group_by(Shot.c.state)).all()))
        rendered_keys = Counter(
            connection.execute(
                select(Shot.c.cache_key)
                .join(Render, Render.c.shot_id == Shot.c.id)
                .where(Render.c.state == AttemptState.SUCCEEDED)
            ).scalars()
        )
        keys_needed = connection.execute(select(func.count(func.distinct(Shot.c.cache_key)))).scalar_one()
        videos = Counter(
            connection.execute(select(Artifact.c.cache_key).where(Artifact.c.kind == ArtifactKind.SHOT_VIDEO)).scalars()
        )
        attempts = Counter(
            dict(connection.execute(select(Render.c.state, func.count()).group_by(Render.c.state)).all())
        )
        events = Counter(dict(connection.execute(select(Event.c.kind, func.count()).group_by(Event.c.kind)).all()))
        jobs = Counter(dict(connection.execute(select(Job.c.state, func.count()).group_by(Job.c.state)).all()))
        with_edit = connection.execute(select(func.count(func.distinct(Edit.c.job_id)))).scalar_one()
        gpu_seconds = float(
            connection.execute(
                select(func.coalesce(func.sum(Render.c.gpu_seconds), 0.0)).where(
                    Render.c.state == AttemptState.SUCCEEDED
                )
            ).scalar_one()
        )
        lost_gpu = float(
            connection.execute(
                select(func.coalesce(func.sum(Render.c.gpu_seconds), 0.0)).where(
                    Render.c.state != AttemptState.SUCCEEDED
                )
            ).scalar_one()
        )
    ended = sum(attempts.values()) - attempts[AttemptState.RUNNING]
    partial = sorted(path for path in store.rglob(".*") if TEMPORARY.match(path.name))
    half_edits = [path for path in (night.data_dir / "edits").rglob(".assemble*")]
    alive = [manager.pid for manager in night.managers if manager.poll() is None]
    ideal = gpu_seconds / gpus
    print(
        f"\n  makespan {wall:.0f} s; the finished shots needed {gpu_seconds:.0f} GPU-s = {ideal:.0f} s on {gpus} GPUs; "
        f"{wall - ideal:.0f} s lost to faults and overhead; {lost_gpu:.0f} GPU-s spent in attempts that did not finish"
    )
    print(f"  attempts: {dict(attempts)}")
    for path in partial:
        print(f"  partial file {path.name}: {night.read(lambda c, path=path: _attempts_of_key(c, path))}")
    return [
        Check("shots done", night.total_shots, shots[ShotState.DONE]),
        Check("cache keys rendered exactly once", keys_needed, sum(1 for n in rendered_keys.values() if n == 1)),
        Check("cache keys rendered twice or more", 0, sum(1 for n in rendered_keys.values() if n > 1)),
        Check("cache keys with 2+ video artifacts", 0, sum(1 for n in videos.values() if n > 1)),
        Check("partial files left in the store", 0, len(partial)),
        Check("half-made edits left", 0, len(half_edits)),
        Check("attempts left running", 0, attempts[AttemptState.RUNNING]),
        Check("shot.started events == attempt rows", sum(attempts.values()), events[EventKind.SHOT_STARTED]),
        Check("render.finished events == ended attempts", ended, events[EventKind.RENDER_FINISHED]),
        Check("jobs done", sum(jobs.values()), jobs[JobState.DONE]),
        Check("jobs with an edit", sum(jobs.values()), with_edit),
        Check("managers alive at the end (the last one started)", 1, len(alive)),
    ]


def _attempts_of_key(connection: Connection, partial: Path) -> str:
    """Which attempts rendered the key a partial file belongs to (state, error class, who ended it): what
    left it."""
    match = TEMPORARY.match(partial.name)
    key = match.group("key") if match else ""
    rows = connection.execute(
        select(Render.c.id, Render.c.state, Render.c.error_class)
        .join(Shot, Shot.c.id == Render.c.shot_id)
        .where(Shot.c.cache_key == key)
        .order_by(Render.c.id)
    ).all()
    return ", ".join(f"attempt {row.id} {row.state} {row.error_class or ''}".rstrip() for row in rows) or "no attempt"


# ---- the night ------------------------------------------------------------------------------------------------


@contextmanager
def database(admin_url: str, root: Path) -> Iterator[str]:
    """A scratch PostgreSQL database (status_scale's), or an SQLite file for ``none``."""
    if admin_url == "none":
        yield f"sqlite:///{root / 'farm.db'}"
        return
    with postgres_scratch(admin_url) as url:
        yield url


@contextmanager
def small_disk(path: Path, megabytes: int) -> Iterator[Path | None]:
    path.mkdir(parents=True, exist_ok=True)
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={megabytes}m", "tmpfs", str(path)], capture_output=True
    )
    try:
        yield path if mounted.returncode == 0 else None
    finally:
        if mounted.returncode == 0:
            subprocess.run(["umount", "-l", str(path)], check=False)


def submit_jobs(db: Database, root: Path, data_dir: Path, models_dir: Path, shots: int, jobs: int, url: str) -> None:
    settings = resolve_settings(data_dir=data_dir, database_url=url, models_dir=models_dir)
    for job in range(jobs):
        count = shots // jobs + (1 if job < shots % jobs else 0)
        specs = [ShotSpec(f"j{job:02d}s{shot:04d}", 25, f"soak job {job} shot {shot}") for shot in range(count)]
        listed = make_project(
            root / "project", episode_yaml(f"show{job % 3}", specs, seed=job), name=f"job{job:02d}.yaml"
        )
        submit_shot_list(db, settings, listed)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--shots", type=int, default=500)
    parser.add_argument("--jobs", type=int, default=10)
    parser.add_argument("--gpus", type=int, default=4)
    parser.add_argument("--seconds-per-frame", type=float, default=0.01)
    parser.add_argument(
        "--postgres", default=os.environ.get("FARM_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
    )
    parser.add_argument("--disk-mb", type=int, default=256, help="size of the artifact store's tmpfs")
    parser.add_argument("--timeout", type=float, default=1800)
    parser.add_argument("--keep", type=Path, help="work in this folder and keep it")
    args = parser.parse_args()  # fmt: skip

    root = args.keep or Path(tempfile.mkdtemp(prefix="farm-soak-"))
    data_dir = root / "data"
    models_dir = root / "models"
    write_manifest(models_dir, "pattern", gpus=1.0, cpus=1.0, seconds_per_frame=args.seconds_per_frame)
    print(f"soak: {args.shots} shots in {args.jobs} jobs on {args.gpus} fake GPU nodes; work in {root}")
    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 0, "include_dashboard": False})
    try:
        for _ in range(args.gpus):
            cluster.add_node(num_cpus=1, num_gpus=1)
        cluster.wait_for_nodes()
        with database(args.postgres, root) as url, small_disk(data_dir / "artifacts", args.disk_mb) as disk:
            db = open_database(url, data_dir=data_dir)
            submit_jobs(db, root, data_dir, models_dir, args.shots, args.jobs, url)
            night = Night(root, url, db, data_dir, models_dir, cluster, args.shots)
            night.start_manager()
            night.say(f"manager started; database {db.display_url}; store on {'a tmpfs' if disk else 'the root disk'}")
            schedule: list[tuple[float, Callable[[], None], bool]] = [
                (0.10, lambda: kill_a_node(night), False),
                (0.25, lambda: connection_storm(night), True),
                (0.40, lambda: restart_the_manager(night), False),
                (0.55, lambda: fill_the_disk(night, disk), True),
                (0.70, lambda: kill_a_node(night), False),
            ]
            deadline = night.started + args.timeout
            while time.monotonic() < deadline and not (night.jobs_finished() and not schedule):
                if schedule and night.done_fraction() >= schedule[0][0]:
                    _, fault, in_background = schedule.pop(0)
                    if in_background:  # a fault that waits (the storm, the full disk) runs beside the loop
                        threading.Thread(target=fault).start()
                    else:  # Ray adds nodes from the main thread only (it sets a signal handler)
                        fault()
                if night.managers[-1].poll() is not None:
                    night.say(f"the manager exited ({night.managers[-1].returncode}); starting another")
                    night.start_manager()
                time.sleep(0.2)
            wall = time.monotonic() - night.started
            checks = audit(night, data_dir / "artifacts", wall, args.gpus)
            for manager in night.managers:
                if manager.poll() is None:
                    manager.send_signal(signal.SIGTERM)
                    manager.wait(timeout=60)
            db.dispose()
    finally:
        cluster.shutdown()
    width = max(len(check.name) for check in checks)
    print()
    for check in checks:
        verdict = "PASS" if check.passed else "FAIL"
        print(f"  {check.name:<{width}}  expected {check.expected!s:>6}  found {check.found!s:>6}  {verdict}")
    failed = sum(not check.passed for check in checks)
    print(f"\n  audit: {len(checks) - failed} of {len(checks)} checks pass; faults: {len(night.faults)}")
    if not args.keep:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
