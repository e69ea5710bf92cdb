"""One render per cache key, farm-wide: claims on keys being rendered, and a store that never replaces a file.

The engine tests run real previz workers on a ``ray.cluster_utils.Cluster`` of fake GPU nodes, two drivers
(each its own Scheduler and database connection) in one data dir, on SQLite and on PostgreSQL.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Iterator
from datetime import datetime, timedelta
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest
import ray
from ray.cluster_utils import Cluster
from sqlalchemy import func, select, update

from farm import files
from farm.db.claims import ClaimRequest, KeyClaimed, renew_claims, renew_driven_claims
from farm.db.columns import utcnow
from farm.db.kinds import ArtifactKind, EventKind
from farm.db.session import Database, open_database
from farm.db.shots import finish_attempt, start_logged_attempt
from farm.db.states import AttemptState, JobState, ShotState
from farm.db.tables import Artifact, Event, Render, RenderClaim, Shot
from farm.digests import file_sha256
from farm.engine.artifacts import ArtifactStore
from farm.engine.messages import EngineEvent, JobOutcome
from farm.jobs.lease import DriverLease
from farm.jobs.run import drive_job
from farm.jobs.submit import submit_shot_list
from farm.media.video import ShotVideoWriter
from farm.settings import REPO_ROOT, Settings, resolve_settings
from tests.shotlists import TEMPLATE, make_project, replace_once
from tests.waiting import wait_for

SMALL = replace_once(TEMPLATE, "width: 480\n  height: 832", "width: 96\n  height: 64")


def sixteen_shots() -> str:
    """Sixteen independent previz shots at the small size (the issue's two-renders case)."""
    lines = [SMALL.split("scenes:")[0] + "scenes:", "  - id: sc", "    shots:"]
    for index in range(16):
        start = round(index * 0.35, 2)  # distinct audio: sixteen distinct cache keys
        lines.append(
            f"      - {{id: s{index:02d}, character: marcus, prompt: shot {index}, "
            f"audio: {{track: sc01, in: {start}, out: {round(start + 1.2, 2)}}}}}"
        )
    return "\n".join(lines) + "\n"


def claim(key: str = "k" * 64, holder: str = "driver-a", lease: float = 600.0) -> ClaimRequest:
    return ClaimRequest(key, holder, lease)


def start(db: Database, shot_pk: int, request: ClaimRequest) -> int:
    return start_logged_attempt(db, shot_pk, worker="w", node="n", device="cpu", by="test", key_claim=request).render_id


def shot_pks(db: Database, job_id: int) -> dict[str, int]:
    with db.read() as connection:
        rows = connection.execute(select(Shot.c.shot_id, Shot.c.id).where(Shot.c.job_id == job_id)).all()
    return {row.shot_id: row.id for row in rows}


# ---- the claim itself ------------------------------------------------------------------------------------


def test_a_claimed_key_refuses_a_second_attempt_and_leaves_nothing_of_it(database: Database, make_job) -> None:
    first, second = make_job(database), make_job(database)
    render_id = start(database, shot_pks(database, first)["a"], claim())
    with pytest.raises(KeyClaimed) as refused:
        start(database, shot_pks(database, second)["a"], claim(holder="driver-b"))
    assert refused.value.claim.render_id == render_id
    assert f"job {first} shot a" in str(refused.value)
    with database.read() as connection:
        assert connection.execute(
            select(Shot.c.state).where(Shot.c.id == shot_pks(database, second)["a"])
        ).scalar_one() == (ShotState.QUEUED)
        assert connection.execute(select(func.count()).select_from(Render)).scalar_one() == 1
    assert renew_claims(database, [render_id], lease_seconds=600) == 1


def test_a_lapsed_claim_is_taken_over_by_the_next_attempt(database: Database, make_job) -> None:
    first, second = make_job(database), make_job(database)
    stale = start(database, shot_pks(database, first)["a"], claim())
    with database.write() as connection:  # its driver died: nothing renewed it
        connection.execute(update(RenderClaim).values(expires_at=utcnow() - timedelta(seconds=1)))
    taken = start(database, shot_pks(database, second)["a"], claim(holder="driver-b"))
    with database.read() as connection:
        row = connection.execute(select(RenderClaim.c.render_id, RenderClaim.c.holder)).one()
    assert (row.render_id, row.holder) == (taken, "driver-b")
    assert renew_claims(database, [stale], lease_seconds=600) == 0, "the fenced-out attempt renews nothing"


def test_an_ended_attempt_releases_its_claim(database: Database, make_job) -> None:
    first, second = make_job(database), make_job(database)
    render_id = start(database, shot_pks(database, first)["a"], claim())
    assert finish_attempt(
        database, render_id, outcome=AttemptState.FAILED, shot_state=ShotState.QUEUED, by="test", error_class="X"
    )
    with database.read() as connection:
        assert connection.execute(select(func.count()).select_from(RenderClaim)).scalar_one() == 0
    start(database, shot_pks(database, second)["a"], claim(holder="driver-b"))


def claim_expiry(db: Database) -> datetime:
    with db.read() as connection:
        return connection.execute(select(RenderClaim.c.expires_at)).scalar_one()


def test_the_drivers_heartbeat_keeps_its_claims_while_no_loop_runs_and_they_lapse_when_it_stops(
    database: Database, make_job
) -> None:
    """The dispatching loop is held (here none runs at all once the attempt has started): the driver lease's
    heartbeat thread alone keeps the claim live for several times its lease; once the beats stop (the
    driver is gone, its attempt still recorded running) the claim lapses and another job takes the key."""
    job, other = make_job(database), make_job(database)
    lease = 1.5
    with DriverLease(database, job, heartbeat_seconds=0.25, stale_after_seconds=lease) as held:
        start(database, shot_pks(database, job)["a"], claim(holder=held.by, lease=lease))
        first_expiry = claim_expiry(database)
        wait_for(lambda: utcnow() > first_expiry + timedelta(seconds=lease), 30, "twice the claim's lease")
        assert claim_expiry(database) > first_expiry + timedelta(seconds=lease / 2), "the heartbeat renewed it"
        with pytest.raises(KeyClaimed):
            start(database, shot_pks(database, other)["a"], claim(holder="driver-b"))
        assert renew_driven_claims(database, "driver-b", lease_seconds=600) == 0, "not driver-b's job"
    last_expiry = claim_expiry(database)
    wait_for(lambda: utcnow() > last_expiry, 30, "the claim's lease to run out")
    taken = start(database, shot_pks(database, other)["a"], claim(holder="driver-b"))
    with database.read() as connection:
        assert connection.execute(select(RenderClaim.c.render_id)).scalar_one() == taken


# ---- the store never replaces a published file ------------------------------------------------------------


def test_publishing_onto_a_published_file_keeps_the_existing_bytes(tmp_path: Path) -> None:
    destination = tmp_path / "key.mp4"
    destination.write_bytes(b"first render")
    temporary = files.temporary_path(destination)
    temporary.write_bytes(b"second render")
    assert not files.publish_new(temporary, destination)
    assert destination.read_bytes() == b"first render"
    assert sorted(path.name for path in tmp_path.iterdir()) == ["key.mp4"], "the second render's file is gone"


def test_the_store_keeps_the_first_render_of_a_key(tmp_path: Path) -> None:
    store = ArtifactStore(tmp_path / "artifacts")
    key = "ab" * 32
    first = np.zeros((1, 4, 4, 3), np.uint8)
    store.save_last_frames(key, first)
    store.save_last_frames(key, np.full((1, 4, 4, 3), 255, np.uint8))
    assert np.array_equal(store.load_last_frames(store.path_for(key, ArtifactKind.LAST_FRAMES)), first)

    video = store.path_for(key, ArtifactKind.SHOT_VIDEO)
    digests = []
    for value in (0, 255):
        with ShotVideoWriter(video, width=16, height=16, fps=Fraction(25), frames=2, keep_existing=True) as sink:
            sink.write(np.full((2, 16, 16, 3), value, np.uint8))
        digests.append(file_sha256(video))
    assert digests[0] == digests[1]
    assert [path.name for path in video.parent.iterdir() if path.name.startswith(".")] == []


# ---- two drivers on one cluster -----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def cluster() -> Iterator[Cluster]:
    """Two fake GPU nodes with two CPUs each, so both drivers' previz workers find room."""
    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 0, "include_dashboard": False})
    for index in range(2):
        cluster.add_node(num_cpus=2, num_gpus=1, env_vars={"FARM_TEST_NODE": f"n{index}"})
    cluster.wait_for_nodes()
    yield cluster
    cluster.shutdown()


@pytest.fixture
def farm_settings(cluster: Cluster, database_url: str, tmp_path: Path) -> Iterator[Settings]:
    settings = resolve_settings(
        data_dir=tmp_path / "data",
        database_url=database_url,
        models_dir=REPO_ROOT / "models",
        ray_address=cluster.address,
    )
    ray.init(address=cluster.address, log_to_driver=False)
    try:
        yield settings
    finally:
        ray.shutdown()


def driver(
    settings: Settings, job_id: int, results: dict[int, JobOutcome], events: list[EngineEvent]
) -> threading.Thread:
    """A driver of its own (Scheduler and database connection), as a second ``farm render`` would be."""

    def drive() -> None:
        db = open_database(settings.database_url, data_dir=settings.data_dir)
        try:
            results[job_id] = drive_job(db, settings, job_id, observer=events.append)
        finally:
            db.dispose()

    thread = threading.Thread(target=drive, name=f"driver-{job_id}")
    thread.start()
    return thread


@pytest.mark.ray
def test_two_renders_of_one_shot_list_render_every_shot_exactly_once(farm_settings: Settings, tmp_path: Path) -> None:
    shot_list = make_project(tmp_path / "project", sixteen_shots())
    db = open_database(farm_settings.database_url, data_dir=farm_settings.data_dir)
    jobs = [submit_shot_list(db, farm_settings, shot_list).job_id for _ in range(2)]
    results: dict[int, JobOutcome] = {}
    events: list[EngineEvent] = []
    threads = [driver(farm_settings, job_id, results, events) for job_id in jobs]
    for thread in threads:
        thread.join(timeout=600)
        assert not thread.is_alive(), "a driver did not finish"

    assert {results[job].state for job in jobs} == {JobState.ASSEMBLING}
    assert all(results[job].done == 16 for job in jobs)
    with db.read() as connection:
        rendered = Counter(
            connection.execute(
                select(Shot.c.cache_key)
                .join(Render, Render.c.shot_id == Shot.c.id)
                .where(Render.c.state == AttemptState.SUCCEEDED)
            ).scalars()
        )
        artifacts = connection.execute(
            select(Artifact.c.path, Artifact.c.bytes, Artifact.c.sha256).where(
                Artifact.c.kind == ArtifactKind.SHOT_VIDEO
            )
        ).all()
        claims_left = connection.execute(select(func.count()).select_from(RenderClaim)).scalar_one()
    assert len(rendered) == 16 and set(rendered.values()) == {1}, f"renders per cache key: {rendered}"
    assert sum(results[job].rendered for job in jobs) == 16
    assert sum(results[job].cached for job in jobs) == 16
    assert len(artifacts) == 16
    for artifact in artifacts:
        path = Path(str(db.paths.to_absolute(artifact.path)))
        assert path.stat().st_size == artifact.bytes and file_sha256(path) == artifact.sha256
    assert claims_left == 0
    db.dispose()


@pytest.mark.ray
def test_a_shot_waits_for_a_claimed_key_then_renders_it_when_the_claim_lapses(
    farm_settings: Settings, tmp_path: Path
) -> None:
    shot_list = make_project(tmp_path / "project", SMALL)
    db = open_database(farm_settings.database_url, data_dir=farm_settings.data_dir)
    crashed = submit_shot_list(db, farm_settings, shot_list).job_id
    start(db, shot_pks(db, crashed)["a"], claim(_cache_key(db, crashed, "a"), holder="dead-driver"))
    job = submit_shot_list(db, farm_settings, shot_list).job_id
    results: dict[int, JobOutcome] = {}
    events: list[EngineEvent] = []
    thread = driver(farm_settings, job, results, events)

    def waiting_reason() -> str | None:
        with db.read() as connection:
            return connection.execute(
                select(Event.c.message).where(Event.c.job_id == job, Event.c.kind == EventKind.SHOT_WAITING)
            ).scalar()

    wait_for(lambda: waiting_reason() is not None, 300, "shot a to wait for the claimed key")
    assert f"job {crashed} shot a" in (waiting_reason() or "")
    with db.read() as connection:
        assert connection.execute(select(Shot.c.state).where(Shot.c.id == shot_pks(db, job)["a"])).scalar_one() == (
            ShotState.QUEUED
        )
    with db.write() as connection:  # the dead driver renews nothing: its claim lapses
        connection.execute(update(RenderClaim).values(expires_at=utcnow() - timedelta(seconds=1)))
    thread.join(timeout=600)
    assert not thread.is_alive()

    assert results[job].state is JobState.ASSEMBLING and results[job].rendered == 3
    assert any("waits for cache key" in event.message for event in events)
    db.dispose()


def _cache_key(db: Database, job_id: int, shot_id: str) -> str:
    with db.read() as connection:
        return connection.execute(
            select(Shot.c.cache_key).where(Shot.c.job_id == job_id, Shot.c.shot_id == shot_id)
        ).scalar_one()
