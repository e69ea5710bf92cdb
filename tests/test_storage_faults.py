"""Faults charged to their cause: a full disk is the storage's, a lost prefetched shot is nobody's.

The policy and the classification are tested on their own; the engine test renders on a real Ray cluster
of fake GPU nodes into an artifact store on a small tmpfs that the test fills up and then frees (it needs
root to mount one, and is skipped with the reason where mounting is refused).
"""

from __future__ import annotations

import errno
import logging
import pickle
import subprocess
import threading
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import ray
import ray.exceptions
from ray.cluster_utils import Cluster
from sqlalchemy import select

from farm.db.kinds import EventKind
from farm.db.session import Database, open_database
from farm.db.states import AttemptState, JobState
from farm.db.tables import Artifact, Edit, Event, Render, Shot
from farm.engine.faults import as_farm_error, classify_failure
from farm.engine.messages import EngineEvent
from farm.engine.policy import (
    EngineOptions,
    Failure,
    FailureKind,
    ShotBudget,
    counts_against_node,
    decide,
)
from farm.engine.storage import MINIMUM_ROOM, StoragePause
from farm.errors import MediaError, StorageFull
from farm.jobs.run import RenderedJob, render_job
from farm.jobs.submit import submit_shot_list
from farm.settings import REPO_ROOT, resolve_settings
from farm.storage import out_of_space
from tests.shotlists import TEMPLATE, make_project, replace_once
from tests.waiting import wait_for

SMALL = replace_once(TEMPLATE, "width: 480\n  height: 832", "width: 96\n  height: 64")


# ---- what a full disk looks like, and what it costs -------------------------------------------------------


def ffmpeg_full_disk() -> MediaError:
    log = "[mp4 @ 0x1] av_interleaved_write_frame(): No space left on device\nConversion failed!"
    error = MediaError("shot a: encoding: ffmpeg failed (exit status 1)")
    error.__cause__ = subprocess.CalledProcessError(1, ["ffmpeg"], stderr=log)
    return error


def test_a_full_disk_is_recognised_in_every_shape_it_arrives_in() -> None:
    assert out_of_space(OSError(errno.ENOSPC, "No space left on device"))
    assert out_of_space(OSError(errno.EDQUOT, "Disk quota exceeded"))
    assert out_of_space(ffmpeg_full_disk())
    assert not out_of_space(OSError(errno.EACCES, "Permission denied"))
    assert not out_of_space(MediaError("shot a: ffmpeg failed (Invalid data found when processing input)"))


def test_the_worker_maps_a_full_disk_to_a_storage_fault_that_survives_the_trip_to_the_driver(tmp_path: Path) -> None:
    mapped = as_farm_error(ffmpeg_full_disk(), "shot a", storage=tmp_path)
    assert isinstance(mapped, StorageFull)
    assert str(tmp_path) in str(mapped) and "shot a" in str(mapped) and "free" in str(mapped)
    travelled = pickle.loads(pickle.dumps(mapped))
    assert isinstance(travelled, StorageFull) and travelled.path == str(tmp_path) and str(travelled) == str(mapped)
    failure = classify_failure(travelled)
    assert failure.kind is FailureKind.STORAGE and failure.path == str(tmp_path)
    assert classify_failure(OSError(errno.ENOSPC, "No space left on device")).kind is FailureKind.STORAGE


def test_a_full_disk_spends_no_budget_and_blames_no_node() -> None:
    budget = ShotBudget(errors=2, crashes=1)
    decision = decide(
        Failure(FailureKind.STORAGE, "StorageFull", "full", path="/store"), budget, EngineOptions(), shot_id="a"
    )
    assert decision.shot_state.value == "queued" and decision.attempt_state is AttemptState.FAILED
    assert decision.budget == budget
    assert not counts_against_node(Failure(FailureKind.STORAGE, "StorageFull", "full"))


def test_a_shot_lost_before_it_reached_the_model_is_not_charged_a_crash() -> None:
    budget = ShotBudget(errors=0, crashes=4)
    options = EngineOptions(max_crashes=4)
    never_ran = Failure(FailureKind.CRASH, "ActorDiedError", "the actor died", reached_model=False)
    decision = decide(never_ran, budget, options, shot_id="b")
    assert decision.shot_state.value == "queued" and decision.attempt_state is AttemptState.CRASHED
    assert decision.budget == budget and "not counted" in decision.note
    assert not counts_against_node(never_ran)
    rendering = Failure(FailureKind.CRASH, "ActorDiedError", "the actor died")
    assert decide(rendering, budget, options, shot_id="a").shot_state.value == "failed", "the one rendering pays"
    assert counts_against_node(rendering)


def test_the_pause_lasts_until_the_disk_has_room_for_a_shot(tmp_path: Path) -> None:
    pause = StoragePause(check_seconds=0.0)
    message = pause.begin(tmp_path, needed=1 << 60)
    assert pause.active and str(tmp_path) in message and "no shot starts" in message
    assert pause.room_again() is None and pause.active, "no filesystem has an exabyte free"
    pause.needed = MINIMUM_ROOM
    resumed = pause.room_again()
    assert resumed is not None and "room again" in resumed and not pause.active


# ---- a render and an assembly into a disk that fills up, then is freed -------------------------------------


def mount_small_disk(mount_point: Path) -> None:
    """A 4 MB tmpfs at ``mount_point`` (skips the test where mounting is refused: it needs root)."""
    mount_point.mkdir(parents=True)
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", str(mount_point)], capture_output=True, text=True
    )
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here ({mounted.stderr.strip() or 'mount refused'}); needs root")


def fill(disk: Path) -> Path:
    """Write a file until the disk is full; the file is the room that freeing it gives back."""
    filler = disk / "filler.bin"
    # unbuffered: a buffered file would try again to write its unwritten tail when it is closed, and fail there
    with filler.open("wb", buffering=0) as out:
        try:
            while True:
                out.write(b"\0" * 65536)
        except OSError as exc:
            assert exc.errno == errno.ENOSPC
    return filler


@pytest.fixture(scope="module")
def cluster() -> Iterator[Cluster]:
    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 0, "include_dashboard": False})
    cluster.add_node(num_cpus=2, num_gpus=1)
    cluster.wait_for_nodes()
    yield cluster
    cluster.shutdown()


@dataclass
class FullDiskRun:
    """A job rendered (and assembled) while the disk under ``disk`` is full until the job pauses."""

    db: Database
    job_id: int
    disk: Path
    outcome: RenderedJob
    events: list[EngineEvent]

    def held_messages(self) -> list[str]:
        return held_messages(self.db, self.job_id)


def held_messages(db: Database, job_id: int) -> list[str]:
    with db.read() as connection:
        return list(
            connection.execute(
                select(Event.c.message)
                .where(Event.c.job_id == job_id, Event.c.kind == EventKind.JOB_HELD)
                .order_by(Event.c.id)
            ).scalars()
        )


@pytest.fixture
def full_disk_run(cluster: Cluster, tmp_path: Path) -> Iterator[Callable[[str], FullDiskRun]]:
    """``run(folder)``: a tmpfs mounted at the data dir's ``folder`` (artifacts, edits; "" for the whole data
    dir, database included) and filled; the job is rendered to its edit by a driver thread; the disk is freed
    once the job says it paused (or ``paused(db, job_id)`` says so)."""
    data_dir = tmp_path / "data"
    mounted: list[Path] = []
    opened: list[Database] = []
    ray.init(address=cluster.address, log_to_driver=False)

    def run(folder: str, paused: Callable[[Database, int], bool] | None = None) -> FullDiskRun:
        settings = resolve_settings(
            data_dir=data_dir,
            database_url=f"sqlite:///{data_dir / 'farm.db'}",  # the database is on another disk
            models_dir=REPO_ROOT / "models",
            ray_address=cluster.address,
        )
        disk = data_dir / folder
        mount_small_disk(disk)
        mounted.append(disk)
        db = open_database(settings.database_url, data_dir=settings.data_dir)
        opened.append(db)
        job_id = submit_shot_list(db, settings, make_project(tmp_path / "project", SMALL)).job_id
        filler = fill(disk)
        results: dict[int, RenderedJob] = {}
        events: list[EngineEvent] = []
        options = EngineOptions(max_attempts=1, blocklist_after=1, retry_base_seconds=0.0, progress_seconds=0.2)

        def drive() -> None:
            driver_db = open_database(settings.database_url, data_dir=settings.data_dir)
            try:
                results[job_id] = render_job(driver_db, settings, job_id, options=options, observer=events.append)
            finally:
                driver_db.dispose()

        thread = threading.Thread(target=drive, name="driver")
        thread.start()
        said_paused = paused or (lambda db, job_id: any(m.startswith("paused:") for m in held_messages(db, job_id)))
        wait_for(lambda: said_paused(db, job_id), 300, "the job to pause")
        filler.unlink()  # someone makes room
        thread.join(timeout=600)
        assert not thread.is_alive(), "the driver did not finish"
        return FullDiskRun(db, job_id, disk, results[job_id], events)

    try:
        yield run
    finally:
        for db in opened:
            db.dispose()
        ray.shutdown()
        for disk in mounted:
            subprocess.run(["umount", "-l", str(disk)], check=False)


def partial_files(disk: Path) -> list[str]:
    return [path.name for path in disk.rglob("*") if ".part" in path.name or path.name.startswith(".assemble")]


@pytest.mark.ray
def test_a_full_artifact_store_pauses_dispatch_and_the_job_goes_on_once_space_is_freed(full_disk_run) -> None:
    run = full_disk_run("artifacts")
    assert run.outcome.outcome.state is JobState.DONE, run.outcome.outcome
    paused, *rest = run.held_messages()
    assert str(run.disk) in paused and "no shot starts" in paused
    assert any(m.startswith("resumed:") for m in rest)
    with run.db.read() as connection:
        attempts = connection.execute(
            select(Shot.c.shot_id, Render.c.state, Render.c.error_class).join(Render, Render.c.shot_id == Shot.c.id)
        ).all()
        blocklisted = connection.execute(select(Event.c.id).where(Event.c.kind == EventKind.NODE_BLOCKLISTED)).all()
        artifacts = connection.execute(select(Artifact.c.path)).scalars().all()
    succeeded = Counter(row.shot_id for row in attempts if row.state is AttemptState.SUCCEEDED)
    assert succeeded == {"a": 1, "b": 1, "c": 1}, attempts
    full = [row for row in attempts if row.state is AttemptState.FAILED]
    assert full and {row.error_class for row in full} == {"StorageFull"}, attempts
    assert blocklisted == [], "a full disk blocklists no node"
    assert not partial_files(run.disk), f"left behind: {partial_files(run.disk)}"
    assert len(artifacts) == len({*artifacts})


@pytest.mark.ray
def test_a_full_disk_while_assembling_waits_for_room_and_then_makes_the_edit(full_disk_run) -> None:
    run = full_disk_run("edits")
    assert run.outcome.outcome.state is JobState.DONE, run.outcome.outcome
    paused, *rest = run.held_messages()
    assert str(run.disk) in paused and "the edit waits" in paused
    assert any(m.startswith("resumed:") for m in rest)
    assert [edit.version for edit in run.outcome.edits] == [1], "one edit, recorded once, after the wait"
    with run.db.read() as connection:
        edits = connection.execute(select(Edit.c.version, Edit.c.video_path)).all()
        states = (
            connection.execute(
                select(Event.c.new_state).where(Event.c.job_id == run.job_id, Event.c.kind == EventKind.JOB_STATE)
            )
            .scalars()
            .all()
        )
    assert len(edits) == 1 and Path(str(run.db.paths.to_absolute(edits[0].video_path))).is_file()
    assert "failed" not in states, "running out of disk fails nothing"
    versions = sorted(path.name for path in (run.disk / f"job-{run.job_id}").iterdir())
    assert versions == ["v001"], f"no stale version folder: {versions}"
    assert not partial_files(run.disk), f"left behind: {partial_files(run.disk)}"


@pytest.mark.ray
def test_with_the_database_on_the_full_disk_the_driver_waits_and_the_job_finishes(
    full_disk_run, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="farm.db.retry")

    def retrying(db: Database, job_id: int) -> bool:  # nothing can be written to the database: look at the log
        return any("disk is full" in record.getMessage() for record in caplog.records)

    run = full_disk_run("", paused=retrying)
    assert run.outcome.outcome.state is JobState.DONE, run.outcome.outcome
    with run.db.read() as connection:
        attempts = connection.execute(
            select(Shot.c.shot_id, Render.c.state).join(Render, Render.c.shot_id == Shot.c.id)
        ).all()
        states = (
            connection.execute(
                select(Event.c.new_state).where(Event.c.job_id == run.job_id, Event.c.kind == EventKind.JOB_STATE)
            )
            .scalars()
            .all()
        )
        blocklisted = connection.execute(select(Event.c.id).where(Event.c.kind == EventKind.NODE_BLOCKLISTED)).all()
    succeeded = Counter(row.shot_id for row in attempts if row.state is AttemptState.SUCCEEDED)
    assert succeeded == {"a": 1, "b": 1, "c": 1}, attempts
    assert "failed" not in states and blocklisted == []
    assert not partial_files(run.disk), f"left behind: {partial_files(run.disk)}"
