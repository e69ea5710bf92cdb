"""How fast is the producer's dashboard, and what does watching cost the farm?

In one run, on SQLite:

(a) a database of 50 jobs (one of 1,000 shots with 3,000 attempts; 100,000 events in all): the server's
    time for the jobs page and for the 1,000-shot job's page (fastest / median of warm requests over HTTP
    on 127.0.0.1), and the browser's (Debian's chromium via Playwright): navigation to the page's data
    drawn (the job page's scripts have fetched the job, its edits and drawn the strip). Targets: < 300 ms
    server, < 1.5 s browser.
(b) SSE fan-out: a manager renders the same 60-shot job (PatternModel, instant frames) with no one
    watching, then with 50 clients on its event stream; the dispatch span (first shot.started to last
    shot.finished) side by side. Target: < 5 % slower with 50 clients.

    python bench/dashboard.py [--clients 50] [--shots 60]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from datetime import timedelta
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))

import httpx  # noqa: E402
import manager as manager_bench  # noqa: E402
import status_scale  # noqa: E402
from sqlalchemy import func, insert, select  # noqa: E402

from farm.api import ApiServer, create_app  # noqa: E402
from farm.api.context import ApiSettings  # noqa: E402
from farm.db.session import open_database  # noqa: E402
from farm.db.tables import Event, Job, Shot  # noqa: E402
from farm.jobs import EngineOptions, Farm  # noqa: E402
from farm.settings import resolve_settings  # noqa: E402

CHROMIUM = "/usr/bin/chromium"


def build_database(url: str) -> None:
    """Job 1: 1,000 shots, 3,000 attempts, 100,000 events; jobs 2-50: 10 shots each, copied from job 1."""
    rows = status_scale.build_rows(1_000, 3_000, 100_000, status_scale.demo_specs())
    db = open_database(url)
    status_scale.insert_rows(db, rows)
    with db.write() as connection:
        job = rows["jobs"][0]
        next_shot = len(rows["shots"]) + 1
        for job_id in range(2, 51):
            connection.execute(insert(Job), [dict(job, id=job_id, project=f"Show {job_id % 5}", episode=f"{job_id:02d}",
                                                  state="done" if job_id % 3 else "failed")])  # fmt: skip
            shots = []
            for index, shot in enumerate(rows["shots"][:10]):
                shots.append(dict(shot, id=next_shot, job_id=job_id, current_render_id=None, artifact_id=None,
                                  state="done", shot_id=f"s{index:02d}"))  # fmt: skip
                next_shot += 1
            connection.execute(insert(Shot), shots)
    db.dispose()


def timed(call, repeat: int) -> tuple[float, float]:  # type: ignore[no-untyped-def]
    call()
    samples = []
    for _ in range(repeat):
        started = time.perf_counter()
        call()
        samples.append(time.perf_counter() - started)
    return min(samples), statistics.median(samples)


def part_a(root: Path, repeat: int) -> None:
    url = f"sqlite:///{root / 'a.db'}"
    build_database(url)
    farm = Farm(resolve_settings(data_dir=root / "data-a", database_url=url))
    token = farm.create_token("bench", "producer")
    server = ApiServer(create_app(farm))
    server.start()
    rows = []
    try:
        with httpx.Client(base_url=server.url, cookies={"farm_session": token}, timeout=60) as client:
            for label, path in (("jobs page /", "/"), ("job page /jobs/1 (1,000 shots)", "/jobs/1")):
                fastest, median = timed(lambda path=path: client.get(path).raise_for_status(), repeat)
                rows.append((f"server: {label}", f"{fastest * 1000:.0f} ms", f"{median * 1000:.0f} ms", "< 300 ms"))
            for label, path in (("API /api/jobs/1 (the job page's data)", "/api/jobs/1"),):
                fastest, median = timed(lambda path=path: client.get(path).raise_for_status(), repeat)
                rows.append((f"server: {label}", f"{fastest * 1000:.0f} ms", f"{median * 1000:.0f} ms", ""))
        rows += browser_times(server.url, token, max(3, repeat // 2))
    finally:
        server.stop()
        farm.close()
    print("\n(a) the dashboard on 50 jobs, one of 1,000 shots, 100,000 events (SQLite, 127.0.0.1)")
    print(manager_bench.table(rows, ("what", "fastest", "median", "target")))


def browser_times(url: str, token: str, repeat: int) -> list[tuple[str, str, str, str]]:
    try:
        from playwright.sync_api import sync_playwright
    except ImportError as exc:
        return [(f"browser: skipped ({exc})", "", "", "")]
    if not Path(CHROMIUM).exists():
        return [(f"browser: skipped ({CHROMIUM} missing)", "", "", "")]
    rows = []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        context = browser.new_context(viewport={"width": 1280, "height": 900})
        context.add_cookies([{"name": "farm_session", "value": token, "url": url}])
        page = context.new_page()
        page.set_default_timeout(120_000)
        checks = {
            "browser: jobs page, loaded": ("/", "document.readyState === 'complete'"),
            "browser: job page, strip of 1,000 drawn from the API": (
                "/jobs/1",
                "document.getElementById('job').dataset.loaded !== undefined",
            ),
        }
        for label, (path, ready) in checks.items():
            samples = []
            for _ in range(repeat + 1):
                started = time.perf_counter()
                page.goto(url + path)
                page.wait_for_function(ready, polling=10)
                samples.append(time.perf_counter() - started)
            samples = samples[1:]
            rows.append((label, f"{min(samples) * 1000:.0f} ms", f"{statistics.median(samples) * 1000:.0f} ms",
                         "< 1500 ms"))  # fmt: skip
        browser.close()
    return rows


def dispatch_span(db_url: str, job_id: int) -> float:
    db = open_database(db_url)
    with db.read() as connection:
        first = connection.execute(
            select(func.min(Event.c.at)).where(Event.c.job_id == job_id, Event.c.kind == "shot.started")
        ).scalar_one()
        last = connection.execute(
            select(func.max(Event.c.at)).where(Event.c.job_id == job_id, Event.c.kind == "shot.finished")
        ).scalar_one()
    db.dispose()
    return (last - first) / timedelta(seconds=1)


PAIRS = 3
"""Rounds with and without watchers, alternated so that the machine's other load falls on both."""


def part_b(root: Path, clients: int, shots: int) -> None:
    workspace = manager_bench.Workspace.make(root / "b", gpus=1, cpus=1, load_seconds=0.0, seconds_per_frame=0.0)
    farm = Farm(workspace.settings)
    token = farm.create_token("bench", "producer")
    stop = threading.Event()
    spans: dict[int, float] = {}
    cpu: dict[int, float] = {}
    with manager_bench.local_ray(gpus=4, cpus=4):
        serving = threading.Thread(
            target=farm.serve, kwargs={"stop": stop, "options": EngineOptions(idle_release_seconds=3600)}
        )
        serving.start()
        server = ApiServer(create_app(farm, settings=ApiSettings()))
        server.start()
        try:
            warm = workspace.submit("warm", manager_bench.episode_yaml("warm", _specs(4, "w")))
            manager_bench.wait_finished(workspace.db, warm, 300)
            for round_index, watchers in enumerate((0, clients) * PAIRS):
                text = manager_bench.episode_yaml("fanout", _specs(shots, f"r{round_index}"), seed=round_index)
                job = workspace.submit(f"round{round_index}", text)
                cpu_before = time.process_time()
                # the watchers live in another process, as browsers do on other machines: their own
                # decoding must not take the manager's interpreter from it
                watching = None
                if watchers:
                    argv = [sys.executable, __file__, "--watch", f"{server.url} {token} {job} {watchers}"]
                    watching = subprocess.Popen(argv)
                manager_bench.wait_finished(workspace.db, job, 600)
                if watching is not None:
                    watching.wait(timeout=120)
                cpu[watchers] = cpu.get(watchers, 0.0) + (time.process_time() - cpu_before) / PAIRS
                spans.setdefault(watchers, 0.0)
                spans[watchers] += dispatch_span(workspace.settings.database_url, job) / PAIRS
        finally:
            server.stop()
            stop.set()
            serving.join()
            farm.close()
    workspace.close()
    ratio = spans[clients] / spans[0]
    print(
        f"\n(b) SSE fan-out: a {shots}-shot job on 4 workers, first shot.started -> last shot.finished"
        f" (mean of {PAIRS} rounds each, alternated)"
    )
    rows = [
        ("no one watching", f"{spans[0]:.2f} s", f"{cpu[0]:.2f} s", ""),
        (
            f"{clients} clients on /events/stream",
            f"{spans[clients]:.2f} s",
            f"{cpu[clients]:.2f} s",
            f"{ratio:.3f}x (target < 1.05x)",
        ),
    ]
    print(manager_bench.table(rows, ("watchers", "dispatch span", "manager+API CPU", "ratio")))


def _specs(count: int, prefix: str) -> list[manager_bench.ShotSpec]:
    return [manager_bench.ShotSpec(f"{prefix}{index:03d}", 4, f"{prefix} shot {index}") for index in range(count)]


def watch(url: str, token: str, job: int, clients: int) -> None:
    """``clients`` followers of the job's event stream, each to its end (the job finished).

    Browsers on producers' machines cost the server only their sockets, so the followers here cost this
    machine as little as they can: one thread, raw sockets, bytes counted and not parsed (with 50 httpx
    threads decoding lines, their own CPU took the two cores the manager and its workers need)."""
    host, port = url.removeprefix("http://").split(":")
    request = (
        f"GET /api/jobs/{job}/events/stream HTTP/1.1\r\nHost: {host}\r\nCookie: farm_session={token}\r\n"
        "Accept: text/event-stream\r\nConnection: close\r\n\r\n"
    ).encode()

    async def follow() -> bool:
        reader, writer = await asyncio.open_connection(host, int(port))
        writer.write(request)
        tail = b""
        while chunk := await reader.read(1 << 16):
            tail = (tail + chunk)[-256:]
        writer.close()
        return b"event: end" in tail

    async def everyone() -> list[bool]:
        return await asyncio.gather(*(follow() for _ in range(clients)))

    ended = asyncio.run(everyone())
    if not all(ended):
        raise SystemExit(f"{ended.count(False)} of {clients} streams stopped before their end event")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--shots", type=int, default=60)
    parser.add_argument("--repeat", type=int, default=10)
    parser.add_argument("--parts", default="ab")
    parser.add_argument("--watch", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.watch:
        url, token, job, clients = args.watch.split()
        watch(url, token, int(job), int(clients))
        return
    print(manager_bench.machine_facts())
    with tempfile.TemporaryDirectory(prefix="farm-bench-dashboard-") as scratch:
        if "a" in args.parts:
            part_a(Path(scratch), args.repeat)
        if "b" in args.parts:
            part_b(Path(scratch), args.clients, args.shots)


if __name__ == "__main__":
    main()
