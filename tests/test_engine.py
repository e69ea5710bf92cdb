"""The render engine on a real Ray cluster of fake GPU nodes: spreading, faults, resume, cache, cancel.

Each test runs real workers (PatternModel through the real worker, encoder and artifact store) on a
``ray.cluster_utils.Cluster`` whose nodes each advertise one GPU, against a real SQLite database. A drive
renders a job's shots and stops there: a job whose every shot is done is ``assembling`` (its edit is next;
``farm.jobs.run.render_job`` makes it), one with a failed shot is ``failed``.
"""

from __future__ import annotations

import itertools
import os
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import ray
from ray.cluster_utils import Cluster
from sqlalchemy import Row, select

from farm.db.jobs import cancel_job, retry_job
from farm.db.session import Database, open_database
from farm.db.states import AttemptState, JobState, ShotState
from farm.db.tables import Artifact, Render, Shot
from farm.engine.artifacts import ArtifactStore
from farm.engine.messages import EngineEvent
from farm.engine.policy import EngineOptions
from farm.jobs.run import drive_job
from farm.jobs.submit import submit_shot_list
from farm.media.video import probe_video
from farm.settings import REPO_ROOT, Settings, resolve_settings
from tests.engine_models import read_log, write_manifest
from tests.shotlists import TEMPLATE, make_project, replace_once
from tests.tiny_wan import saved_tiny_model

pytestmark = pytest.mark.ray

FAST_HEALTH_CHECKS = {
    "health_check_initial_delay_ms": 0,
    "health_check_period_ms": 300,
    "health_check_timeout_ms": 300,
    "health_check_failure_threshold": 5,
}

SIX_SHOTS = (
    replace_once(
        replace_once(TEMPLATE, "quality: preview", "quality: final\n  model: pattern"),
        "width: 480\n  height: 832",
        "width: 96\n  height: 64",
    )
    + """\
  - id: sc02
    shots:
      - id: d
        character: walter
        audio: {track: sc01, in: 0, out: 1.2}
        prompt: Walter again
      - id: e
        character: marcus
        audio: {track: sc01, in: 1.2, out: 2.4}
        prompt: Marcus again
      - id: f
        character: walter
        audio: {track: sc01, in: 2.4, out: 3.6}
        prompt: Walter once more
"""
)


@dataclass
class Farm:
    """Everything a test needs: a cluster, settings pointing at it, a database, a project, a log."""

    cluster: Cluster
    settings: Settings
    db: Database
    shot_list: Path
    log: Path
    nodes: list

    def submit(self, text: str | None = None, priority: int = 0) -> int:
        if text is not None:
            self.shot_list.write_text(text)
        return submit_shot_list(self.db, self.settings, self.shot_list, priority=priority).job_id

    def run(self, job_id: int, **options: object) -> tuple[object, list[EngineEvent]]:
        events: list[EngineEvent] = []
        outcome = drive_job(self.db, self.settings, job_id, options=EngineOptions(**options), observer=events.append)
        return outcome, events

    def shots(self, job_id: int) -> dict[str, Row[Any]]:
        with self.db.read() as connection:
            rows = connection.execute(select(Shot).where(Shot.c.job_id == job_id)).all()
            return {row.shot_id: row for row in rows}

    def attempts(self, job_id: int) -> list[tuple[str, int, str, str, str | None]]:
        """(shot id, attempt no, attempt state, node, error class) for every attempt of the job."""
        with self.db.read() as session:
            rows = session.execute(
                select(Shot.c.shot_id, Render.c.attempt_no, Render.c.state, Render.c.node, Render.c.error_class)
                .join(Render, Render.c.shot_id == Shot.c.id)
                .where(Shot.c.job_id == job_id)
                .order_by(Render.c.id)
            ).all()
            return [(r[0], r[1], AttemptState(r[2]).value, r[3], r[4]) for r in rows]

    def finished_renders(self) -> Counter:
        return Counter(entry["shot"] for entry in read_log(self.log) if entry["event"] == "finish")


def start_cluster(gpu_nodes: int, bad_nodes: int = 0) -> tuple[Cluster, list]:
    cluster = Cluster(
        initialize_head=True,
        head_node_args={"num_cpus": 0, "include_dashboard": False, "_system_config": FAST_HEALTH_CHECKS},
    )
    nodes = []
    for index in range(gpu_nodes):
        env = {"FARM_TEST_NODE": f"n{index}"}
        if index < bad_nodes:
            env["FARM_TEST_BAD_NODE"] = "1"
        nodes.append(cluster.add_node(num_cpus=1, num_gpus=1, env_vars=env))
    cluster.wait_for_nodes()
    return cluster, nodes


@pytest.fixture(scope="module")
def shared_cluster() -> Iterator[tuple[Cluster, list]]:
    """Three GPU nodes, the first with FARM_TEST_BAD_NODE set, for the tests that kill nothing."""
    cluster, nodes = start_cluster(3, bad_nodes=1)
    yield cluster, nodes
    cluster.shutdown()


@pytest.fixture
def farm_factory(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator:
    """Makes a Farm: on the shared cluster by default, or on a cluster of its own (for killing nodes)."""
    made: list[tuple[Farm, bool]] = []

    def make(gpu_nodes: int | None = None, text: str = SIX_SHOTS, **model_params: object) -> Farm:
        own = gpu_nodes is not None
        cluster, nodes = start_cluster(gpu_nodes) if own else request.getfixturevalue("shared_cluster")
        log = tmp_path / "renders.log"
        write_manifest(tmp_path / "models", "pattern", log=str(log), **model_params)
        settings = resolve_settings(
            data_dir=tmp_path / "data",
            database_url=f"sqlite:///{tmp_path / 'farm.db'}",
            models_dir=tmp_path / "models",
            ray_address=cluster.address,
        )
        ray.init(address=cluster.address, log_to_driver=False)
        farm = Farm(
            cluster,
            settings,
            open_database(settings.database_url, data_dir=settings.data_dir),
            make_project(tmp_path / "project", text),
            log,
            nodes,
        )
        made.append((farm, own))
        return farm

    yield make
    for farm, own in made:
        ray.shutdown()
        if own:
            farm.cluster.shutdown()
        farm.db.dispose()


def test_shots_spread_over_the_gpu_nodes_and_every_transition_is_recorded(farm_factory) -> None:
    farm = farm_factory(seconds_per_frame=0.01)
    job = farm.submit()
    outcome, events = farm.run(job)

    assert outcome.state is JobState.ASSEMBLING and outcome.done == 6
    shots = farm.shots(job)
    assert {shot.state for shot in shots.values()} == {ShotState.DONE}
    attempts = farm.attempts(job)
    assert len(attempts) == 6 and {a[2] for a in attempts} == {"succeeded"}
    assert len({entry["node"] for entry in read_log(farm.log) if entry["event"] == "finish"}) >= 2
    loads = [entry for entry in read_log(farm.log) if entry["event"] == "load"]
    assert len(loads) == 3  # one worker per GPU; the model loads once per worker, not once per shot
    assert [e.kind for e in events].count("done") == 6


def test_a_killed_node_loses_nothing_leaves_no_partial_file_and_every_shot_is_done_exactly_once(
    farm_factory,
) -> None:
    farm = farm_factory(gpu_nodes=3, seconds_per_frame=0.05)
    job = farm.submit()
    killer = threading.Thread(target=_kill_a_busy_node, args=(farm,))
    killer.start()
    outcome, events = farm.run(job)
    killer.join()

    assert outcome.state is JobState.ASSEMBLING
    attempts = farm.attempts(job)
    succeeded = Counter(a[0] for a in attempts if a[2] == "succeeded")
    assert succeeded == Counter("abcdef")  # exactly one successful attempt per shot
    assert any(a[2] == "crashed" for a in attempts), attempts
    with farm.db.read() as session:
        keys = session.scalars(select(Artifact.c.cache_key).where(Artifact.c.kind == "shot_video")).all()
    assert len(keys) == len(set(keys)) == 6
    assert any(e.kind == "retry" and "worker lost" in e.message for e in events)
    # A lost worker charges a crash to one shot, the one that held its render slot: a shot prefetched behind
    # it never reached the model and is not charged. (A loaded machine may lose a second node to missed
    # heartbeats, and the charged shot's retry may land on the dying node's new worker before Ray reports the
    # node dead, so the charge is checked per worker.)
    with farm.db.read() as session:
        crashes = session.execute(
            select(Shot.c.shot_id, Render.c.worker, Render.c.node, Render.c.error_message)
            .join(Shot, Shot.c.id == Render.c.shot_id)
            .where(Render.c.state == "crashed")
        ).all()
    charged: dict[tuple[str, str], set[str]] = {}
    for shot, worker, node, message in crashes:
        if "not counted" not in message:
            charged.setdefault((worker, node), set()).add(shot)
    assert charged and all(len(shots) == 1 for shots in charged.values()), crashes
    # The killed worker's half-written .part.mp4 / .part.wav went when its crash was recorded.
    assert partial_files(farm.settings.artifacts_dir) == []


def partial_files(store: Path) -> list[Path]:
    """The hidden temporaries in the artifact store (what a render that never published leaves)."""
    return sorted(path for path in store.rglob(".*") if path.is_file())


def _kill_a_busy_node(farm: Farm) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        started = [e for e in read_log(farm.log) if e["event"] == "start"]
        if started:
            busy_node = started[0]["node"]
            index = int(busy_node[1:])
            time.sleep(0.3)
            farm.cluster.remove_node(farm.nodes[index], allow_graceful=False)
            return
        time.sleep(0.05)


def test_resubmitting_renders_nothing_and_an_edited_prompt_rerenders_that_shot_and_its_continuation(
    farm_factory,
) -> None:
    farm = farm_factory()
    first = farm.submit()
    farm.run(first)
    rendered_once = farm.finished_renders()

    second = farm.submit()
    outcome, _ = farm.run(second)
    assert outcome.state is JobState.ASSEMBLING
    assert farm.finished_renders() == rendered_once
    assert all(shot.cached for shot in farm.shots(second).values())

    third = farm.submit(replace_once(SIX_SHOTS, "prompt: A man speaks", "prompt: A man whispers"))
    farm.run(third)
    new_renders = farm.finished_renders() - rendered_once
    assert set(new_renders) == {"a", "c"}  # c continues a
    assert {sid for sid, shot in farm.shots(third).items() if not shot.cached} == {"a", "c"}


def test_a_failing_shot_is_retried_then_failed_and_farm_retry_requeues_it(farm_factory) -> None:
    farm = farm_factory(fail_first=3, fail_shots=["a"])
    job = farm.submit()
    outcome, events = farm.run(job, max_attempts=3)

    assert outcome.state is JobState.FAILED
    shots = farm.shots(job)
    assert shots["a"].state is ShotState.FAILED and shots["a"].attempts == 3
    assert "injected failure 3" in shots["a"].last_error
    assert shots["c"].state is ShotState.FAILED and shots["c"].attempts == 0
    assert "continues shot a" in shots["c"].last_error
    assert {shots[s].state for s in "bdef"} == {ShotState.DONE}
    assert any("2 more failures will fail it" in e.message for e in events)

    assert retry_job(farm.db, job, by="editor") == 2
    outcome, _ = farm.run(job)
    assert outcome.state is JobState.ASSEMBLING
    assert {shot.state for shot in farm.shots(job).values()} == {ShotState.DONE}


def test_a_node_that_keeps_failing_is_blocklisted_and_the_job_finishes_elsewhere(farm_factory) -> None:
    farm = farm_factory(fail_on_env="FARM_TEST_BAD_NODE", seconds_per_frame=0.01)
    job = farm.submit(many_shots(12, "s"))  # independent shots: the bad node gets two at once and fails both
    outcome, events = farm.run(job, max_attempts=5, blocklist_after=2, retry_base_seconds=0.05)

    assert outcome.state is JobState.ASSEMBLING
    failed_nodes = {a[3] for a in farm.attempts(job) if a[2] == "failed"}
    assert len(failed_nodes) == 1
    assert any("blocklisted" in e.message for e in events)


def test_out_of_memory_is_retried_with_the_low_memory_settings(farm_factory) -> None:
    farm = farm_factory(
        text=TEMPLATE.replace("quality: preview", "quality: final\n  model: pattern").replace(
            "width: 480\n  height: 832", "width: 96\n  height: 64"
        ),
        needs_low_memory=True,
    )
    job = farm.submit()
    outcome, _ = farm.run(job)

    assert outcome.state is JobState.ASSEMBLING
    per_shot = Counter(a[0] for a in farm.attempts(job))
    assert per_shot == Counter({"a": 2, "b": 2, "c": 2})
    assert {a[4] for a in farm.attempts(job) if a[2] == "failed"} == {"OutOfMemoryError"}


def test_cancel_stops_queued_and_running_shots(farm_factory) -> None:
    farm = farm_factory(seconds_per_frame=0.05)
    job = farm.submit()
    canceller = threading.Thread(target=_cancel_when_started, args=(farm, job))
    canceller.start()
    outcome, _ = farm.run(job)
    canceller.join()

    assert outcome.state is JobState.CANCELLED
    states = Counter(shot.state for shot in farm.shots(job).values())
    assert ShotState.RUNNING not in states and ShotState.QUEUED not in states
    assert states[ShotState.CANCELLED] >= 4
    assert {a[2] for a in farm.attempts(job)} <= {"succeeded", "cancelled"}


def _cancel_when_started(farm: Farm, job: int) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and not any(e["event"] == "start" for e in read_log(farm.log)):
        time.sleep(0.05)
    cancel_job(farm.db, job, by="producer")


def test_a_killed_driver_resumes_without_rerendering_finished_shots_or_leaving_partial_files(farm_factory) -> None:
    farm = farm_factory(gpu_nodes=2, seconds_per_frame=0.03)
    job = farm.submit()
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    args = [
        "--data-dir", str(farm.settings.data_dir), "--db", farm.settings.database_url,
        "--models-dir", str(farm.settings.models_dir), "--address", farm.cluster.address,
    ]  # fmt: skip
    farm.settings.data_dir.mkdir(parents=True, exist_ok=True)
    driver_log = (farm.settings.data_dir / "driver.log").open("w")
    driver = subprocess.Popen(
        [sys.executable, "-m", "farm", "render", "--resume", str(job), *args],
        env=env,
        stdout=driver_log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    deadline = time.monotonic() + 90

    def done_shots() -> set[str]:
        return {sid for sid, shot in farm.shots(job).items() if shot.state is ShotState.DONE}

    while time.monotonic() < deadline and len(done_shots()) < 2 and driver.poll() is None:
        time.sleep(0.05)
    os.killpg(driver.pid, signal.SIGKILL)
    driver.wait()
    done_before = done_shots()
    renders_before = farm.finished_renders()
    assert len(done_before) >= 2, (farm.settings.data_dir / "driver.log").read_text()[-3000:]

    outcome, _ = farm.run(job)

    assert outcome.state is JobState.ASSEMBLING
    again = farm.finished_renders() - renders_before
    assert not set(again) & done_before
    assert any(a[2] == "crashed" for a in farm.attempts(job))
    # What the killed driver's renders had half-written went when the resume recovered their attempts.
    assert partial_files(farm.settings.artifacts_dir) == []


def test_a_final_quality_job_renders_with_the_diffusion_model_on_gpu_workers(farm_factory, tmp_path: Path) -> None:
    weights = saved_tiny_model(tmp_path / "weights")
    text = replace_once(
        replace_once(TEMPLATE, "quality: preview", "quality: final\n  model: tiny-gpu"),
        "width: 480\n  height: 832",
        "width: 96\n  height: 64",
    )
    farm = farm_factory(text=text)
    (farm.settings.models_dir / "tiny-gpu.yaml").write_text(
        "name: tiny-gpu\nadapter: wan_audio\nquality: final\n"
        f"weights: {weights}\n"
        "resources: {gpus: 1, cpus: 1}\n"
        "defaults: {steps: 2, text_guidance: 3.0, audio_guidance: 4.0}\n"
        "size_multiple: 16\ncontinuation_frames: 5\n"
        "render: {window_latent_frames: 6, overlap_latent_frames: 2}\n"
    )
    job = farm.submit()
    outcome, events = farm.run(job)

    assert outcome.state is JobState.ASSEMBLING, [e.message for e in events if e.kind in {"failed", "retry"}]
    shots = farm.shots(job)
    with farm.db.read() as session:
        videos = {a.cache_key: a for a in session.execute(select(Artifact).where(Artifact.c.kind == "shot_video"))}
        tails = {a.cache_key: a for a in session.execute(select(Artifact).where(Artifact.c.kind == "last_frames"))}
    for shot in shots.values():
        info = probe_video(farm.settings.data_dir / videos[shot.cache_key].path)  # stored relative
        assert (info.frames, info.width, info.height) == (shot.frames, 96, 64)
        assert ArtifactStore.load_last_frames(farm.settings.data_dir / tails[shot.cache_key].path).shape == (
            5,
            64,
            96,
            3,
        )
    assert {a[2] for a in farm.attempts(job)} == {"succeeded"}
    # (spreading over the nodes is test_shots_spread_over_the_gpu_nodes...'s: here the second worker may
    # still be loading the model when the first has rendered all three shots, on a loaded machine)


def many_shots(count: int, prefix: str, seconds: float = 1.2) -> str:
    """A shot list of ``count`` independent shots of marcus, at the engine tests' small size."""
    head = SIX_SHOTS.split("scenes:")[0]
    lines = [head + "scenes:", "  - id: sc", "    shots:"]
    for index in range(count):
        start = round(index * 0.4 % 6, 2)
        lines.append(
            f"      - {{id: {prefix}{index}, character: marcus, prompt: {prefix} shot {index}, "
            f"audio: {{track: sc01, in: {start}, out: {round(start + seconds, 2)}}}}}"
        )
    return "\n".join(lines) + "\n"


def test_a_higher_priority_job_takes_the_cluster_at_shot_boundaries(farm_factory) -> None:
    farm = farm_factory(seconds_per_frame=0.03)
    low = farm.submit(many_shots(12, "low"))
    results: dict[int, tuple] = {}
    low_driver = threading.Thread(target=lambda: results.setdefault(low, farm.run(low)))
    low_driver.start()
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline and not farm.finished_renders():
        time.sleep(0.05)
    high = farm.submit(many_shots(3, "high"), priority=5)
    high_driver = threading.Thread(target=lambda: results.setdefault(high, farm.run(high)))
    high_driver.start()
    low_driver.join()
    high_driver.join()

    assert results[low][0].state is JobState.ASSEMBLING and results[high][0].state is JobState.ASSEMBLING
    finishes = {job: _last_finish(farm, job) for job in (low, high)}
    assert finishes[high] < finishes[low]
    low_started_after_high = [a for a in _attempt_times(farm, low) if a[0] > finishes[high]]
    assert low_started_after_high, "the low-priority job resumed after the high one finished"
    assert any("higher priority" in e.message for e in results[low][1])


def _attempt_times(farm: Farm, job_id: int) -> list[tuple]:
    with farm.db.read() as session:
        return session.execute(
            select(Render.c.started_at, Render.c.finished_at)
            .join(Shot, Render.c.shot_id == Shot.c.id)
            .where(Shot.c.job_id == job_id)
        ).all()


def _last_finish(farm: Farm, job_id: int):
    return max(finished for _, finished in _attempt_times(farm, job_id))


def test_a_worker_starts_its_next_shot_while_the_last_one_is_still_encoding(farm_factory) -> None:
    # Big frames (288x512) rendered instantly: at the end of each shot's model run, x264 still has most of
    # its frames to encode. The worker gives its GPU slot back when the model returns, so the shot
    # prefetched behind it starts before that encoding is over.
    big = SIX_SHOTS.replace("width: 96\n  height: 64", "width: 288\n  height: 512")
    farm = farm_factory(seconds_per_frame=0.0)
    job = farm.submit(big)
    outcome, _ = farm.run(job)

    assert outcome.state is JobState.ASSEMBLING and outcome.done == 6
    with farm.db.read() as connection:
        rows = connection.execute(
            select(Render.c.worker, Render.c.started_at, Render.c.timings).where(
                Render.c.state == AttemptState.SUCCEEDED
            )
        ).all()
    by_worker: dict[str, list[dict[str, float]]] = {}
    # in the order the worker's model took them: sent at started_at, then waiting for the slot
    for worker, _, timings in sorted(
        rows, key=lambda row: row.started_at + timedelta(seconds=row.timings["waited_for_slot"])
    ):
        by_worker.setdefault(worker, []).append(timings)
    pairs = [(first, second) for shots in by_worker.values() for first, second in itertools.pairwise(shots)]
    # a shot sent to a worker before its last shot's model was done (waited for the slot longer than the GPU
    # was idle): the ones whose start says whether the slot was given back before the encoding ended
    queued = [(first, second) for first, second in pairs if second["waited_for_slot"] > second["gpu_idle_before"]]
    assert queued, f"no shot was sent to a busy worker: {pairs}"
    assert all(first["encode_after_render"] > 0 for first, _ in pairs)
    overlapped = [second["gpu_idle_before"] < first["encode_after_render"] for first, second in queued]
    assert all(overlapped), [(first["encode_after_render"], second["gpu_idle_before"]) for first, second in queued]
