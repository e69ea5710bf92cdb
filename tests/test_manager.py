"""The farm manager on a real Ray cluster of four fake GPU nodes: many jobs, shared workers, ranking
between shows, kill -9 and a standby, stuck renders, budgets, an unreachable head.

Jobs render through PatternModel (the real worker, encoder and artifact store) and get their edits;
the manager runs in this process (``Farm.serve`` in a thread) or as a real ``farm serve`` process when
a test kills it. Every wait has a deadline.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

import pytest
import ray
from prometheus_client.parser import text_string_to_metric_families
from ray.cluster_utils import Cluster
from sqlalchemy import select, update

from farm.db.columns import utcnow
from farm.db.jobs import transition_job
from farm.db.kinds import EventKind
from farm.db.lease import claim_driver, heartbeat
from farm.db.queries import shots_of_job
from farm.db.session import Database
from farm.db.shots import start_attempt
from farm.db.states import AttemptState, JobState
from farm.db.tables import Job, Render, Shot
from farm.jobs import EngineOptions, Farm, open_farm
from farm.jobs.manager import ManagerOptions
from farm.notify.notifier import NotifierOptions
from farm.settings import REPO_ROOT
from tests.api_farm import served
from tests.engine_models import read_log, write_manifest
from tests.receivers import WebhookReceiver, webhook_receiver
from tests.shotlists import make_project

pytestmark = pytest.mark.ray

HEALTH = {
    "health_check_initial_delay_ms": 0,
    "health_check_period_ms": 300,
    "health_check_timeout_ms": 300,
    "health_check_failure_threshold": 3,
}
FAST = EngineOptions(idle_release_seconds=0.5, heartbeat_seconds=0.5, retry_base_seconds=0.2)
"""Short clocks so a test sees a release, a takeover or a retry in seconds."""


def shot_list(project: str, shots: int, *, quality: str = "final", prefix: str = "s") -> str:
    """A shot list of ``shots`` 0.4 s shots (10 frames at 96x64) of one show, one scene."""
    lines = [
        "version: 1",
        f"project: {project}",
        f'episode: "{prefix}"',
        "output: {fps: 25, width: 96, height: 64}",
        "defaults:",
        f"  quality: {quality}",
        "  model: pattern",
        "  preview_model: pattern-preview",
        "  seed: 7",
        "characters:",
        "  marcus: {image: media/marcus.jpg}",
        "audio_tracks:",
        "  sc01: {file: media/sc01_dialogue.wav}",
        "scenes:",
        "  - id: sc01",
        "    shots:",
    ]
    for index in range(shots):
        start = round(0.4 * index, 2)
        lines += [
            f"      - id: {prefix}{index:02d}",
            "        character: marcus",
            f"        audio: {{track: sc01, in: {start}, out: {round(start + 0.4, 2)}}}",
            f"        prompt: {project} {prefix} shot {index}",
        ]
    return "\n".join(lines) + "\n"


@dataclass
class Rig:
    """A farm on the shared cluster: its data dir, models, database and the render log."""

    root: Path
    address: str
    log: Path

    def farm(self, config: Path | None = None) -> Farm:
        return open_farm(
            data_dir=self.root / "data",
            database_url=f"sqlite:///{self.root / 'farm.db'}",
            models_dir=self.root / "models",
            ray_address=self.address,
            config=config,
        )

    def project(self, name: str, text: str) -> Path:
        return make_project(self.root / "projects" / name, text)

    def loads(self) -> Counter:
        return Counter(entry.get("model", "?") for entry in read_log(self.log) if entry["event"] == "load")

    def finishes(self) -> Counter:
        return Counter(entry["shot"] for entry in read_log(self.log) if entry["event"] == "finish")

    def serve_command(self) -> list[str]:
        return [
            sys.executable,
            "-m",
            "farm",
            "serve",
            "--listen",
            "none",
            "--idle-release",
            "0.5",
            "--data-dir",
            str(self.root / "data"),
            "--db",
            f"sqlite:///{self.root / 'farm.db'}",
            "--models-dir",
            str(self.root / "models"),
            "--address",
            self.address,
        ]


@pytest.fixture(scope="module")
def cluster() -> Iterator[Cluster]:
    cluster = Cluster(
        initialize_head=True, head_node_args={"num_cpus": 0, "include_dashboard": False, "_system_config": HEALTH}
    )
    for index in range(4):
        cluster.add_node(num_cpus=1, num_gpus=1, env_vars={"FARM_TEST_NODE": f"n{index}"})
    cluster.wait_for_nodes()
    yield cluster
    cluster.shutdown()


@pytest.fixture
def rig(tmp_path: Path, cluster: Cluster) -> Iterator[Rig]:
    def models(**final: object) -> None:
        write_manifest(tmp_path / "models", "pattern", log=str(log), **final)

    log = tmp_path / "renders.log"
    models(seconds_per_frame=0.05)
    write_manifest(
        tmp_path / "models",
        "pattern-preview",
        quality="preview",
        log=str(log),
        seconds_per_frame=0.02,
    )
    rig = Rig(tmp_path, cluster.address, log)
    rig.models = models  # type: ignore[attr-defined]
    ray.init(address=cluster.address, log_to_driver=False)
    yield rig
    ray.shutdown()


@dataclass
class Serving:
    """A manager running in this process: ``stop()`` ends it as SIGTERM would."""

    thread: threading.Thread
    stop_event: threading.Event
    messages: list[str]

    def stop(self) -> None:
        self.stop_event.set()
        self.thread.join(timeout=120)
        assert not self.thread.is_alive(), "the manager did not stop"


def serve(farm: Farm, options: EngineOptions = FAST, manager: ManagerOptions | None = None) -> Serving:
    stop = threading.Event()
    messages: list[str] = []

    def run() -> None:
        farm.serve(stop=stop, options=options, manager=manager, observer=lambda event: messages.append(event.message))

    thread = threading.Thread(target=run, name="test-manager", daemon=True)
    thread.start()
    return Serving(thread, stop, messages)


def wait_until(condition: Callable[[], object], *, within: float, what: str, log: Callable[[], str] = str) -> object:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"not within {within:.0f} s: {what}\n{log()}")


def job_states(farm: Farm) -> dict[int, JobState]:
    with farm.database(write=False).read() as connection:
        return dict(connection.execute(select(Job.c.id, Job.c.state)).all())


def all_done(farm: Farm, jobs: list[int]) -> bool:
    states = job_states(farm)
    return all(states.get(job) is JobState.DONE and farm.latest_edit(job) is not None for job in jobs)


def attempts(farm: Farm) -> list[tuple[int, str, str, str, datetime, str | None, str | None, str, float]]:
    """(job, show, shot, state, started, error class, error message, worker, GPU-seconds) of every attempt,
    in start order."""
    with farm.database(write=False).read() as connection:
        rows = connection.execute(
            select(
                Job.c.id,
                Job.c.project,
                Shot.c.shot_id,
                Render.c.state,
                Render.c.started_at,
                Render.c.error_class,
                Render.c.error_message,
                Render.c.worker,
                Render.c.gpu_seconds,
            )
            .join(Shot, Shot.c.id == Render.c.shot_id)
            .join(Job, Job.c.id == Shot.c.job_id)
            .order_by(Render.c.id)
        ).all()
    return [tuple(row) for row in rows]


# ---- many shows, one manager -------------------------------------------------------------------------------


def test_three_shows_share_the_farm_previews_go_first_and_each_model_loads_once(rig: Rig) -> None:
    """Show C has twice the share of A and B. Final jobs are queued first, then a preview job: every preview
    shot starts before any final shot, no show waits for another to finish, the shares hold while every show
    has work, and each model's workers load once for all seven jobs."""
    with rig.farm() as farm:
        farm.set_show("Show C", share=2.0)
        jobs = []
        for show, count in (("Show A", 2), ("Show B", 1), ("Show C", 2)):
            for index in range(count):
                text = shot_list(show, 8, prefix=f"f{index}")
                jobs.append(farm.submit(rig.project(f"{show}-{index}", text)).job_id)
        jobs.append(farm.submit(rig.project("preview-B", shot_list("Show B", 6, quality="preview", prefix="p"))).job_id)
        serving = serve(farm)
        try:
            with served(farm) as api:
                # /metrics while the farm renders: the first scrape that shows a busy worker
                busy_scrape = wait_until(
                    lambda: (text := api.call(None, "GET", "/metrics").text) and 'state="busy"' in text and text,
                    within=400,
                    what="a scrape with a busy worker",
                )
            wait_until(
                lambda: all_done(farm, jobs),
                within=400,
                what="every job done",
                log=lambda: "\n".join(serving.messages[-30:]),
            )
        finally:
            serving.stop()
        started = attempts(farm)

    assert {a[3] for a in started} == {AttemptState.SUCCEEDED}
    previews = [a for a in started if a[2].startswith("p")]
    finals = [a for a in started if not a[2].startswith("p")]
    assert len(previews) == 6 and len(finals) == 40
    assert max(a[4] for a in previews) <= min(a[4] for a in finals), "a final shot started before the previews"

    # Fair share is in GPU time, previews included: until the first show has no shot left to start, each
    # show's part of the GPU time its attempts used is within 10 points of 1:1:2.
    window_end = min(max(a[4] for a in finals if a[1] == show) for show in ("Show A", "Show B", "Show C"))
    used = Counter()
    for attempt in started:
        if attempt[4] <= window_end:
            used[attempt[1]] += attempt[8]
    total = sum(used.values())
    fractions = {show: used[show] / total for show in ("Show A", "Show B", "Show C")}
    expected = {"Show A": 0.25, "Show B": 0.25, "Show C": 0.5}
    assert all(abs(fractions[show] - expected[show]) <= 0.10 for show in expected), fractions
    # No show waits for another to finish: each starts final shots before the first show runs out of them
    # (how soon depends on the GPU time its previews already used, which a loaded machine stretches).
    assert {a[1] for a in finals if a[4] < window_end} == {"Show A", "Show B", "Show C"}, "a show starved"

    loads = rig.loads()
    assert 1 <= loads["pattern"] <= 4, loads  # one per GPU at most, for five final jobs
    assert 1 <= loads["pattern-preview"] <= 4, loads
    # /metrics of the manager mid-run: its resident workers by state, a busy fraction each, the queue by show
    samples = [sample for family in text_string_to_metric_families(str(busy_scrape)) for sample in family.samples]
    workers = sum(sample.value for sample in samples if sample.name == "farm_workers")
    fractions = [sample.value for sample in samples if sample.name == "farm_worker_busy_fraction"]
    shots = sum(sample.value for sample in samples if sample.name == "farm_shots")
    shows = {sample.labels["show"] for sample in samples if sample.name == "farm_shots"}
    assert workers == len(fractions) >= 1 and all(0 <= fraction <= 1 for fraction in fractions), samples
    assert shots == 46 and shows == {"Show A", "Show B", "Show C"}


def test_an_urgent_job_takes_the_next_free_workers_and_a_budget_holds_a_show_until_raised(rig: Rig) -> None:
    with rig.farm() as farm:
        farm.set_show("Budget Show", gpu_hour_budget=1e-7)
        slow = farm.submit(rig.project("slow", shot_list("Big Show", 12, prefix="b"))).job_id
        held = farm.submit(rig.project("held", shot_list("Budget Show", 12, prefix="h"))).job_id
        options = EngineOptions(idle_release_seconds=0.5, heartbeat_seconds=0.5, max_workers_per_model=2)
        serving = serve(farm, options, ManagerOptions(budget_seconds=0.2))
        try:
            wait_until(lambda: _hold_reason(farm, held), within=120, what="the over-budget show is held")
            urgent = farm.submit(rig.project("urgent", shot_list("Big Show", 2, prefix="u")), priority=10).job_id
            wait_until(lambda: all_done(farm, [urgent]), within=200, what="the urgent job done")
            assert _hold_reason(farm, held), "the held job ran on"
            farm.set_show("Budget Show", gpu_hour_budget=100.0)
            wait_until(lambda: all_done(farm, [slow, held, urgent]), within=300, what="every job done")
        finally:
            serving.stop()
        started = attempts(farm)
        events = farm.events(held)

    held_at = next(e.at for e in events if e.kind == EventKind.JOB_HELD and "held" in e.message)
    released_at = next(e.at for e in events if e.kind == EventKind.JOB_HELD and "released" in e.message)
    assert held_at < released_at
    held_starts = [a[4] for a in started if a[0] == held]
    assert not [at for at in held_starts if held_at < at < released_at], "a held job's shot started while held"
    urgent_starts = [a[4] for a in started if a[0] == urgent]
    slow_after = [a[4] for a in started if a[0] == slow and a[4] > min(urgent_starts)]
    assert len(urgent_starts) == 2
    assert slow_after, "the urgent job waited for the whole slow job"


def _hold_reason(farm: Farm, job_id: int) -> str | None:
    with farm.database(write=False).read() as connection:
        return connection.execute(select(Job.c.hold_reason).where(Job.c.id == job_id)).scalar_one()


def test_a_stuck_render_is_killed_recorded_and_its_shot_finishes_on_another_worker(rig: Rig) -> None:
    rig.models(
        seconds_per_frame=0.02,
        hang_shots=["s01"],
        stuck={"seconds": 3, "seconds_per_frame": 0},
        fail_first=1,
        fail_shots=["s02"],
    )
    config = rig.root / "farm.toml"
    with webhook_receiver() as hook:
        config.write_text(f'[[notifications.webhook]]\nurl = "{hook.url}"\n', encoding="utf-8")
        with rig.farm(config) as farm:
            job = farm.submit(rig.project("stuck", shot_list("Stuck Show", 4))).job_id
            engine = EngineOptions(idle_release_seconds=120, heartbeat_seconds=0.5, retry_base_seconds=0.2)
            notify = NotifierOptions(poll_seconds=0.2, settle_seconds=0.5)
            serving = serve(farm, engine, ManagerOptions(notify=notify))
            try:
                wait_until(
                    lambda: all_done(farm, [job]),
                    within=240,
                    what="the job done",
                    log=lambda: "\n".join(serving.messages[-30:]),
                )
                # the webhook hears of the stuck shot, then of the job's end, while the manager runs
                heard = wait_until(lambda: _heard_the_end(hook), within=60, what="the job's end notified")
            finally:
                serving.stop()
            tried = [a for a in attempts(farm) if a[2] == "s01"]
            logs = {row for row in _log_paths(farm, job)}
            partial = _partial_files(farm)

    assert heard[0] == "shot.stuck" and heard[-1] in ENDS and set(heard[:-1]) == {"shot.stuck"}, heard

    assert [a[3] for a in tried] == [AttemptState.CRASHED, AttemptState.SUCCEEDED], tried
    assert tried[0][5] == "Stuck" and "no progress" in tried[0][6], tried[0]
    assert tried[1][7] != tried[0][7], "the shot ran again on the worker that hung"
    first_failure = next(path for shot, no, path, state in logs if shot == "s02" and state == AttemptState.FAILED)
    text = (farm.settings.data_dir / first_failure).read_text()  # stored relative to the data dir
    assert "Traceback" in text and "injected failure 1 of shot s02" in text, text
    assert partial == [], "the killed worker's half-written files stayed"


ENDS = ("job.done", "edit.failed_qc")


def _heard_the_end(hook: WebhookReceiver) -> list[str]:
    """The event types the receiver got, once one says the job ended (else an empty list). The hung shot
    may be killed more than once (a render queued behind it on the killed worker counts as stuck too)."""
    types = [json.loads(request.body)["type"] for request in hook.received]
    return types if any(kind in ENDS for kind in types) else []


def _log_paths(farm: Farm, job_id: int) -> list[tuple[str, int, str, str]]:
    with farm.database(write=False).read() as connection:
        return [
            tuple(row)
            for row in connection.execute(
                select(Shot.c.shot_id, Render.c.attempt_no, Render.c.log_path, Render.c.state)
                .join(Render, Render.c.shot_id == Shot.c.id)
                .where(Shot.c.job_id == job_id)
            ).all()
        ]


# ---- kill -9 and a standby ---------------------------------------------------------------------------------


def test_kill_9_of_the_manager_a_standby_takes_over_within_10_s_and_nothing_done_renders_again(rig: Rig) -> None:
    rig.models(seconds_per_frame=0.1)
    with rig.farm() as farm:
        job = farm.submit(rig.project("night", shot_list("Night Show", 12))).job_id
        farm.database(write=False)
    first_log, second_log = rig.root / "first.log", rig.root / "second.log"
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    with first_log.open("w") as out:
        first = subprocess.Popen(rig.serve_command(), stdout=out, stderr=subprocess.STDOUT, env=env)
    second = None
    try:
        wait_until(
            lambda: "managing the farm" in first_log.read_text(),
            within=120,
            what="the first manager up",
            log=first_log.read_text,
        )
        with second_log.open("w") as out:
            second = subprocess.Popen(rig.serve_command(), stdout=out, stderr=subprocess.STDOUT, env=env)
        wait_until(
            lambda: "standing by" in second_log.read_text(),
            within=120,
            what="the standby waiting",
            log=second_log.read_text,
        )
        with rig.farm() as farm:
            wait_until(
                lambda: _done_shots(farm, job) >= 3, within=120, what="three shots done", log=first_log.read_text
            )
            first.send_signal(signal.SIGKILL)
            killed_at = time.monotonic()
            first.wait(timeout=30)
            done_before = _done_shot_ids(farm, job)
            wait_until(
                lambda: "managing the farm" in second_log.read_text(),
                within=30,
                what="the standby took over",
                log=second_log.read_text,
            )
            took_over = time.monotonic() - killed_at
            wait_until(lambda: all_done(farm, [job]), within=240, what="the job done", log=second_log.read_text)
            tried = attempts(farm)
            partial = _partial_files(farm)
    finally:
        for process in (first, second):
            if process is not None and process.poll() is None:
                process.send_signal(signal.SIGTERM)
                process.wait(timeout=60)

    assert took_over < 10, f"the standby took {took_over:.1f} s"
    succeeded = Counter(a[2] for a in tried if a[3] == AttemptState.SUCCEEDED)
    assert set(succeeded) == {f"s{i:02d}" for i in range(12)} and set(succeeded.values()) == {1}, succeeded
    finishes = rig.finishes()
    assert all(finishes[shot] == 1 for shot in done_before), (done_before, finishes)
    assert partial == [], "the killed manager's half-written renders stayed"


def _partial_files(farm: Farm) -> list[Path]:
    """The hidden temporaries in the artifact store: what renders that never published left."""
    return sorted(path for path in farm.settings.artifacts_dir.rglob(".*") if path.is_file())


def _done_shots(farm: Farm, job_id: int) -> int:
    return len(_done_shot_ids(farm, job_id))


def _done_shot_ids(farm: Farm, job_id: int) -> set[str]:
    with farm.database(write=False).read() as connection:
        return set(
            connection.execute(select(Shot.c.shot_id).where(Shot.c.job_id == job_id, Shot.c.state == "done")).scalars()
        )


# ---- an unreachable head ------------------------------------------------------------------------------------


def test_an_unreachable_ray_head_fails_fast_with_a_located_message(tmp_path: Path) -> None:
    project = make_project(tmp_path / "project")  # the template: previz, a model every farm has
    closed = _closed_port()
    started = time.monotonic()
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "farm",
            "render",
            str(project),
            "--address",
            f"127.0.0.1:{closed}",
            "--data-dir",
            str(tmp_path / "data"),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "PYTHONPATH": str(REPO_ROOT)},
    )
    assert time.monotonic() - started < 30
    assert result.returncode == 2, result.stderr
    assert f"cannot reach the Ray head at --address 127.0.0.1:{closed}" in result.stderr
    assert "ray start --head" in result.stderr and "Traceback" not in result.stderr


def test_farm_serve_reports_an_unreachable_head_and_keeps_trying(tmp_path: Path) -> None:
    closed = _closed_port()
    log = tmp_path / "serve.log"
    command = [
        sys.executable,
        "-m",
        "farm",
        "serve",
        "--listen",
        "none",
        "--address",
        f"127.0.0.1:{closed}",
        "--data-dir",
        str(tmp_path / "data"),
    ]
    with log.open("w") as out:
        process = subprocess.Popen(
            command, stdout=out, stderr=subprocess.STDOUT, env={**os.environ, "PYTHONPATH": str(REPO_ROOT)}
        )
    try:
        wait_until(lambda: log.read_text().count("trying again") >= 2, within=60, what="two reports", log=log.read_text)
        assert process.poll() is None, "farm serve gave up"
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=60)
    assert f"cannot reach the Ray head at --address 127.0.0.1:{closed}" in log.read_text()
    assert process.returncode == 0 and "Traceback" not in log.read_text()


def _closed_port() -> int:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_a_show_at_its_gpu_quota_never_holds_more_gpus_while_another_show_uses_the_rest(rig: Rig) -> None:
    with rig.farm() as farm:
        farm.set_show("Quota Show", gpu_quota=1)
        capped = farm.submit(rig.project("capped", shot_list("Quota Show", 6, prefix="q"))).job_id
        other = farm.submit(rig.project("other", shot_list("Open Show", 6, prefix="o"))).job_id
        serving = serve(farm, EngineOptions(idle_release_seconds=30, heartbeat_seconds=0.5))
        try:
            wait_until(lambda: all_done(farm, [capped, other]), within=300, what="both jobs done")
        finally:
            serving.stop()
        with farm.database(write=False).read() as connection:
            spans = connection.execute(
                select(Job.c.project, Render.c.started_at, Render.c.finished_at)
                .join(Shot, Shot.c.id == Render.c.shot_id)
                .join(Job, Job.c.id == Shot.c.job_id)
            ).all()

    def most_at_once(show: str) -> int:
        mine = [(start, end) for project, start, end in spans if project == show]
        return max(sum(1 for s, e in mine if s <= start < e) for start, _ in mine)

    assert most_at_once("Quota Show") == 1
    assert most_at_once("Open Show") >= 2, "the other show did not get the GPUs the capped one left"


# ---- debris swept as the manager starts ----------------------------------------------------------------------


def test_the_manager_sweeps_debris_as_it_starts_and_keeps_what_a_live_attempt_may_own(rig: Rig) -> None:
    """An old partial render and a crashed assembly's folder go as the manager starts; a partial render
    younger than an attempt another live driver runs (started three hours ago) stays."""
    hour = 3600.0
    with rig.farm() as farm:
        job = farm.submit(rig.project("elsewhere", shot_list("Elsewhere Show", 1))).job_id
        db = farm.database(write=True)
        assert claim_driver(db, job, "driver@elsewhere-1", stale_after=60.0)
        transition_job(db, job, JobState.RENDERING, by="driver@elsewhere-1")
        start_attempt(db, shots_of_job(db, job)[0].pk, worker="w", node="n", device="cpu", by="driver@elsewhere-1")
        with db.write() as connection:
            connection.execute(update(Render).values(started_at=utcnow() - timedelta(hours=3)))
        store = farm.settings.artifacts_dir
        old = _aged(store / "ab" / f".ab{'c' * 62}.0123456789ab.part.mp4", 4 * hour)
        young = _aged(store / "de" / f".de{'f' * 62}.0123456789ab.part.mp4", 2 * hour)
        crashed = farm.settings.edits_dir / "job-999" / "v001"  # an assembly that died before its edit row
        _aged(crashed / ".assemble.0123456789ab" / "edit.mp4", hour)
        for folder in (crashed / ".assemble.0123456789ab", crashed):
            os.utime(folder, (time.time() - hour, time.time() - hour))
        beating = threading.Event()
        beats = threading.Thread(target=_keep_driving, args=(db, job, "driver@elsewhere-1", beating), daemon=True)
        beats.start()
        serving = serve(farm)
        try:
            said = wait_until(
                lambda: [m for m in serving.messages if m and m.startswith("removed ")],
                within=120,
                what="the start sweep",
                log=lambda: "\n".join(m or "" for m in serving.messages),
            )
        finally:
            serving.stop()
            beating.set()
            beats.join()
        still_running = shots_of_job(db, job)[0].state

    assert said[0].startswith("removed 2 leftover file(s) of dead processes"), said
    assert not old.exists() and not crashed.exists()
    assert young.exists(), "a file the live attempt may be writing was swept"
    assert still_running == "running", "the manager took over a job another live driver drives"


def _aged(path: Path, seconds: float) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"partial")
    os.utime(path, (time.time() - seconds, time.time() - seconds))
    return path


def _keep_driving(db: Database, job_id: int, driver_id: str, stop: threading.Event) -> None:
    """Another live driver's heartbeat (the manager must leave its job alone)."""
    while not stop.wait(0.2):
        heartbeat(db, job_id, driver_id)
