"""How fast is ``farm status`` on a big job? A 10,000-shot job with 30,000 attempts and 100,000 events.

For SQLite (a file) and PostgreSQL (a scratch database on the server named by --postgres, created and
dropped here) in one run, this script:

1. bulk-inserts the job (shots carry real ShotTask specs from the demo episode's plan, cycled);
2. times the reads behind the commands, in process and warm: ``job_detail`` (the status read of the
   job), the same plus JSON encoding (what ``farm status JOB --json`` does), rendering the rich page
   (``farm status JOB``), ``job_summaries`` (the summary query of ``farm status``) and ``job_events``;
3. times ``python -m farm status JOB --json`` end to end as a subprocess, next to ``python -c "import
   farm.cli"``, so interpreter start-up and imports are visible as such.

Target: a status read of a 10,000-shot job under 100 ms.

    python bench/status_scale.py [--postgres postgresql://postgres@127.0.0.1:5432/postgres | none]
"""

from __future__ import annotations

import argparse
import io
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from rich.console import Console  # noqa: E402
from sqlalchemy import create_engine, insert, text  # noqa: E402
from sqlalchemy.engine import URL  # noqa: E402

from farm.catalog import ModelCatalog  # noqa: E402
from farm.cli.options import json_bytes  # noqa: E402
from farm.cli.status_view import AUTO_LIST_LIMIT, job_view, jobs_table  # noqa: E402
from farm.db.connect import normalise_url  # noqa: E402
from farm.db.queries import events_since, job_detail, job_events, job_summaries  # noqa: E402
from farm.db.records import JobDetail  # noqa: E402
from farm.db.session import Database, open_database  # noqa: E402
from farm.db.states import ShotState  # noqa: E402
from farm.db.tables import Artifact, Event, Job, Render, Shot  # noqa: E402
from farm.plan import plan_shot_list  # noqa: E402
from farm.shotlist.load import load_shot_list  # noqa: E402

CHUNK = 5_000


def demo_specs() -> list[dict[str, Any]]:
    catalog = ModelCatalog(REPO / "models")
    plan = plan_shot_list(load_shot_list(REPO / "shots" / "demo" / "episode.yaml", catalog=catalog), catalog)
    return [task.to_json() for task in plan.tasks]


def shot_fate(index: int) -> str:
    """Most shots done, some failed, running, queued or served from the cache, spread through the edit."""
    slot = index % 100
    if slot < 5:
        return "cached"
    if slot < 8:
        return "failed"
    if slot < 10:
        return "running"
    if slot < 20:
        return "queued"
    return "done"


def build_rows(shots: int, attempts: int, events: int, specs: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    """Rows for one job: ``shots`` shots, exactly ``attempts`` attempts and ``events`` events."""
    t0 = datetime(2026, 5, 1, 22, 0, tzinfo=UTC)
    fates = [shot_fate(index) for index in range(shots)]
    rendered = [index for index, fate in enumerate(fates) if fate not in ("cached", "queued")]
    per_shot, extra = divmod(attempts, len(rendered))
    shot_rows: list[dict[str, Any]] = []
    render_rows: list[dict[str, Any]] = []
    artifact_rows: list[dict[str, Any]] = []
    event_rows: list[dict[str, Any]] = []
    render_id = 0

    def event(kind: str, shot_pk: int | None, rid: int | None, old: str | None, new: str | None, at: datetime) -> None:
        row = {"at": at, "changed_by": "driver", "kind": kind, "job_id": 1, "shot_id": shot_pk, "render_id": rid}
        event_rows.append(dict(row, old_state=old, new_state=new, message="", data=None))

    event("job.submitted", None, None, None, "queued", t0)
    event("job.state", None, None, "queued", "rendering", t0)
    rendered_rank = {index: rank for rank, index in enumerate(rendered)}
    for index, fate in enumerate(fates):
        pk = index + 1
        spec = dict(specs[index % len(specs)], shot=f"sh{index:05d}", scene=f"sc{index // 100:03d}", order=index)
        key = f"{index:064x}"
        at = t0 + timedelta(seconds=index)
        event("shot.created", pk, None, None, "queued", t0)
        count = 0
        if index in rendered_rank:
            count = per_shot + (1 if rendered_rank[index] < extra else 0)
        current = None
        for attempt in range(1, count + 1):
            render_id += 1
            last = attempt == count
            state = {"done": "succeeded", "failed": "failed", "running": "running"}[fate] if last else "crashed"
            started = at + timedelta(seconds=attempt * 90)
            finished = None if state == "running" else started + timedelta(seconds=75)
            render_rows.append({
                "id": render_id, "shot_id": pk, "attempt_no": attempt, "worker": f"RenderWorker-{index % 32}",
                "node": f"gpu-node-{index % 8}", "device": f"cuda:{index % 4}", "state": state, "started_at": started,
                "finished_at": finished, "progress": 0.5 if state == "running" else 1.0, "phase": "denoise",
                "progress_at": started, "error_class": "RenderError" if state == "failed" else None,
                "error_message": "no face found in the portrait" if state == "failed" else None,
                "gpu_seconds": 75.0, "warnings": None,
            })  # fmt: skip
            event("shot.started", pk, render_id, "queued", "running", started)
            if finished is not None:
                shot_state = {"succeeded": "done", "failed": "failed"}.get(state, "queued")
                event("render.finished", pk, render_id, "running", state, finished)
                event("shot.finished", pk, render_id, "running", shot_state, finished)
            current = render_id
        artifact_id = None
        if fate in ("done", "cached"):
            artifact_rows.append({"id": len(artifact_rows) + 1, "cache_key": key, "kind": "shot_video",
                                  "path": f"/data/artifacts/{key[:2]}/{key}.mp4", "bytes": 4_000_000,
                                  "sha256": key, "frames": spec["frames"], "duration": spec["duration_seconds"],
                                  "created_at": at})  # fmt: skip
            artifact_id = len(artifact_rows)
        if fate == "cached":
            event("shot.cached", pk, None, "queued", "done", at)
        shot_rows.append({
            "id": pk, "job_id": 1, "shot_id": spec["shot"], "scene_id": spec["scene"], "edit_order": index,
            "spec": spec, "cache_key": key, "frames": spec["frames"], "state": "done" if fate == "cached" else fate,
            "cached": fate == "cached", "attempts": count, "current_render_id": current, "artifact_id": artifact_id,
            "gpu_seconds": 75.0 * count, "render_seconds": 75.0 if fate == "done" else 0.0,
            "last_error": "RenderError: no face found" if fate == "failed" else None, "updated_at": at,
        })  # fmt: skip
    while len(event_rows) < events:
        event_rows.append(
            dict(event_rows[0], kind="job.driver", message="heartbeat gap", old_state=None, new_state=None)
        )
    del event_rows[events:]
    job = {"id": 1, "project": "Scale Show", "episode": "01", "shot_list_path": "/p/scale.yaml",
           "shot_list_sha256": "0" * 64, "quality": "final", "priority": 0, "state": "rendering", "options": {},
           "submitted_by": "bench", "submitted_at": t0, "started_at": t0, "updated_at": t0,
           "driver_id": "bench:1", "driver_heartbeat_at": t0}  # fmt: skip
    assert len(render_rows) == attempts and len(event_rows) == events and len(shot_rows) == shots
    return {"jobs": [job], "artifacts": artifact_rows, "shots": shot_rows, "renders": render_rows, "events": event_rows}


def insert_rows(db: Database, rows: dict[str, list[dict[str, Any]]]) -> float:
    started = time.perf_counter()
    with db.write() as connection:
        for model, name in ((Job, "jobs"), (Artifact, "artifacts")):
            connection.execute(insert(model), rows[name])
        shots_without_render = [dict(row, current_render_id=None) for row in rows["shots"]]
        for chunk in chunks(shots_without_render):
            connection.execute(insert(Shot), chunk)
        for chunk in chunks(rows["renders"]):
            connection.execute(insert(Render), chunk)
        connection.execute(
            text("UPDATE shots SET current_render_id = (SELECT max(r.id) FROM renders r WHERE r.shot_id = shots.id)")
        )
        for chunk in chunks(rows["events"]):
            connection.execute(insert(Event), chunk)
        if db.backend == "postgresql":
            for table in ("jobs", "shots", "renders", "artifacts", "events"):
                connection.execute(text(f"SELECT setval('{table}_id_seq', (SELECT max(id) FROM {table}))"))
    elapsed = time.perf_counter() - started
    with db.write() as connection:
        connection.exec_driver_sql("ANALYZE")  # what autovacuum (PostgreSQL) or PRAGMA optimize would do
    return elapsed


def chunks(rows: list[dict[str, Any]]) -> Iterator[list[dict[str, Any]]]:
    for start in range(0, len(rows), CHUNK):
        yield rows[start : start + CHUNK]


def timed(function: Callable[[], object], repeat: int) -> tuple[float, float]:
    """(fastest, median) seconds of ``repeat`` warm calls, after one warm-up call. The fastest is the
    better estimate of the cost on a shared, busy machine; the median says what a person usually waits."""
    function()
    samples = []
    for _ in range(repeat):
        started = time.perf_counter()
        function()
        samples.append(time.perf_counter() - started)
    return min(samples), statistics.median(samples)


CPU_SAMPLES: dict[str, tuple[float, float]] = {}
"""CPU seconds (user + system) of each timed command, fastest / median: on a loaded machine the CPU a
command burns moves less than its wall time."""


def subprocess_seconds(args: list[str], data_dir: Path, repeat: int) -> tuple[float, float]:
    # As a user runs farm: with bytecode cached (a sandbox that sets PYTHONDONTWRITEBYTECODE would otherwise
    # recompile farm's sources on every start), after one warm-up run.
    env = {**os.environ, "PYTHONPATH": str(REPO), "FARM_DATA_DIR": str(data_dir)}
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    subprocess.run([sys.executable, *args], env=env, check=True, capture_output=True)
    samples, cpu = [], []
    for _ in range(repeat):
        started, before = time.perf_counter(), os.times()
        subprocess.run([sys.executable, *args], env=env, check=True, capture_output=True)
        after = os.times()
        samples.append(time.perf_counter() - started)
        cpu.append(after.children_user - before.children_user + after.children_system - before.children_system)
    CPU_SAMPLES[" ".join(args)] = (min(cpu), statistics.median(cpu))
    return min(samples), statistics.median(samples)


def measure(
    url: str, rows: dict[str, list[dict[str, Any]]], repeat: int, data_dir: Path
) -> dict[str, tuple[float, float]]:
    db = open_database(url)
    try:
        inserted = insert_rows(db, rows)
        results = {"insert": (inserted, inserted)}
        detail = job_detail(db, 1)
        assert len(detail.shots) == len(rows["shots"])
        sink = Console(file=io.StringIO(), width=200, color_system=None)

        def status_read() -> JobDetail:
            # What `farm status JOB` reads: SQL aggregates plus the running (and failed) shots.
            return job_detail(db, 1, shot_states=[ShotState.RUNNING], all_shots_up_to=AUTO_LIST_LIMIT)

        results["status_read"] = timed(status_read, repeat)
        results["status_table"] = timed(lambda: sink.print(job_view(status_read(), chosen_by_user=False)), repeat)
        results["job_detail"] = timed(lambda: job_detail(db, 1), repeat)
        results["status_json"] = timed(lambda: json_bytes(job_detail(db, 1).to_json()), repeat)
        results["summaries"] = timed(lambda: job_summaries(db, limit=20), repeat)
        results["summaries_table"] = timed(lambda: sink.print(jobs_table(job_summaries(db), detail.as_of)), repeat)
        results["events"] = timed(lambda: job_events(db, 1), max(3, repeat // 3))
        results["events_first_page"] = timed(lambda: events_since(db, 1, after=0, limit=500), repeat)
        results["events_newest"] = timed(lambda: job_events(db, 1, limit=200), repeat)
    finally:
        db.dispose()
    results["cli_status_json"] = subprocess_seconds(
        ["-m", "farm", "status", "1", "--json", "--db", url], data_dir, max(3, repeat // 3)
    )
    results["cli_status_job"] = subprocess_seconds(
        ["-m", "farm", "status", "1", "--db", url], data_dir, max(3, repeat // 3)
    )
    results["cli_status"] = subprocess_seconds(["-m", "farm", "status", "--db", url], data_dir, max(3, repeat // 3))
    results["cli_server_job"], results["cli_server_json"] = server_seconds(url, data_dir, max(3, repeat // 3))
    return results


def server_seconds(url: str, data_dir: Path, repeat: int) -> tuple[tuple[float, float], tuple[float, float]]:
    """``farm status JOB`` (and ``--json``) end to end against the HTTP API of a farm on ``url``, as an
    editor's machine runs it: its client imports no SQLAlchemy; the server (uvicorn, in this process, API
    only) reads the database."""
    from farm.api import ApiServer, create_app
    from farm.jobs import Farm
    from farm.settings import resolve_settings

    farm = Farm(resolve_settings(data_dir=data_dir / "server", database_url=url))
    token = farm.create_token("bench", "producer")
    try:
        with ApiServer(create_app(farm)) as server:
            base = ["-m", "farm", "status", "1", "--server", server.url, "--token", token]
            return subprocess_seconds(base, data_dir, repeat), subprocess_seconds([*base, "--json"], data_dir, repeat)
    finally:
        farm.close()


@contextmanager
def postgres_scratch(admin_url: str) -> Iterator[str]:
    admin: URL = normalise_url(admin_url)
    name = f"farm_bench_{uuid.uuid4().hex[:10]}"
    engine = create_engine(admin, isolation_level="AUTOCOMMIT")
    with engine.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield admin.set(database=name).render_as_string(hide_password=False)
    finally:
        with engine.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        engine.dispose()


ROWS = [
    ("insert", "bulk insert of the job (s)"),
    ("status_read", "status read of the job, as `status JOB` does it (ms)"),
    ("status_table", "  + rich page: `status JOB` in process (ms)"),
    ("job_detail", "full read, every shot: job_detail (ms)"),
    ("status_json", "  + JSON encoding: `status JOB --json` in process (ms)"),
    ("summaries", "summary query: job_summaries (ms)"),
    ("summaries_table", "  + rich table: `status` in process (ms)"),
    ("events", "audit log read: job_events, every event (ms)"),
    ("events_first_page", "  first page of 500: events_since (the API's paging, the stream's replay) (ms)"),
    ("events_newest", "  newest 200: job_events(limit=200) (the dashboard's log) (ms)"),
    ("cli_status_job", "`python -m farm status JOB` end to end (ms)"),
    ("cli_status_json", "`python -m farm status JOB --json` end to end (ms)"),
    ("cli_status", "`python -m farm status` end to end (ms)"),
    ("cli_server_job", "`python -m farm status JOB --server URL` end to end (ms)"),
    ("cli_server_json", "`python -m farm status JOB --server URL --json` end to end (ms)"),
]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--postgres", default=os.environ.get("FARM_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres"),
                        help="admin URL of a PostgreSQL server, or 'none'")  # fmt: skip
    parser.add_argument("--shots", type=int, default=10_000)
    parser.add_argument("--attempts", type=int, default=30_000)
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=9)
    args = parser.parse_args()

    rows = build_rows(args.shots, args.attempts, args.events, demo_specs())
    print(f"job: {args.shots:,} shots, {args.attempts:,} attempts, {args.events:,} events; median of {args.repeat}")
    with tempfile.TemporaryDirectory() as scratch:
        data_dir = Path(scratch)
        startup = subprocess_seconds(["-c", "import farm.cli"], data_dir, 3)
        results = {"sqlite": measure(f"sqlite:///{data_dir / 'farm.db'}", rows, args.repeat, data_dir)}
        if args.postgres.strip().lower() != "none":
            with postgres_scratch(args.postgres) as url:
                results["postgresql"] = measure(url, rows, args.repeat, data_dir)
    backends = list(results)
    width = max(len(label) for _, label in ROWS)
    load = ", ".join(f"{value:.1f}" for value in os.getloadavg())
    print(f"{os.cpu_count()} CPUs, load average {load}; each cell: fastest / median")
    print(f"{'':{width}}  " + "  ".join(f"{name:>17}" for name in backends))
    for key, label in ROWS:
        scale = 1 if key == "insert" else 1000
        cells = [results[name][key] for name in backends]
        print(f"{label:{width}}  " + "  ".join(f"{low * scale:7.1f} / {mid * scale:7.1f}" for low, mid in cells))
    startup_label = '`python -c "import farm.cli"`: interpreter + imports (ms)'
    print(f"{startup_label:{width}}  {startup[0] * 1000:7.1f} / {startup[1] * 1000:7.1f}")
    print("CPU (user + system) of each command, fastest / median (ms):")
    for command, (low, mid) in CPU_SAMPLES.items():
        shown = command.replace(f"sqlite:///{data_dir / 'farm.db'}", "SQLITE")
        shown = re.sub(r"postgresql\S*", "POSTGRESQL", shown)
        shown = re.sub(r"--server \S+ --token \S+", "--server URL", shown)
        print(f"  {shown:{width - 2}}  {low * 1000:7.1f} / {mid * 1000:7.1f}")
    for name in backends:
        for key in ("status_read", "job_detail"):
            _, median = results[name][key]
            verdict = "meets" if median < 0.1 else "misses"
            print(f"{name}: {key} median {median * 1000:.1f} ms {verdict} the 100 ms target")


if __name__ == "__main__":
    main()
