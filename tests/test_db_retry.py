"""Transient database faults are ridden out, permanent ones reported: ``farm.db.retry``.

Real faults only: a second SQLite connection holding the write lock, PostgreSQL backends terminated with
``pg_terminate_backend`` (what a failover or a pooler recycling does to a farm), and, for the storm, a real
render on a ``ray.cluster_utils.Cluster`` of fake GPU nodes while its connections are killed 20 times.
"""

from __future__ import annotations

import ast
import logging
import sqlite3
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import ray
from click.testing import CliRunner
from ray.cluster_utils import Cluster
from sqlalchemy import Engine, create_engine, event, func, select, text
from sqlalchemy.engine import URL
from sqlalchemy.exc import DBAPIError, IntegrityError

from farm.cli import cli
from farm.db import connect
from farm.db.errors import DatabaseOutage
from farm.db.events import record_event
from farm.db.jobs import transition_job
from farm.db.kinds import EventKind
from farm.db.retry import RetryPolicy, is_transient
from farm.db.session import Database, open_database
from farm.db.shots import finish_attempt, start_logged_attempt
from farm.db.states import AttemptState, JobState, LostRace, ShotState
from farm.db.tables import Event, Job, Render, Shot
from farm.engine.messages import JobOutcome
from farm.jobs.run import drive_job
from farm.jobs.submit import submit_shot_list
from farm.settings import REPO_ROOT, resolve_settings
from tests.conftest import url_string
from tests.shotlists import TEMPLATE, make_project, replace_once

RETRY_LOG = "farm.db.retry"


def shot_pks(db: Database, job_id: int) -> dict[str, int]:
    with db.read() as connection:
        return dict(connection.execute(select(Shot.c.shot_id, Shot.c.id).where(Shot.c.job_id == job_id)).all())


def event_count(db: Database, **where: Any) -> int:
    with db.read() as connection:
        statement = select(func.count()).select_from(Event)
        for column, value in where.items():
            statement = statement.where(Event.c[column] == value)
        return connection.execute(statement).scalar_one()


# ---- one mechanism --------------------------------------------------------------------------------------------


def _opens_a_transaction(function: ast.FunctionDef) -> bool:
    return any(
        isinstance(item.context_expr, ast.Call)
        and isinstance(item.context_expr.func, ast.Attribute)
        and item.context_expr.func.attr in ("read", "write", "session")
        and isinstance(item.context_expr.func.value, ast.Name)
        and item.context_expr.func.value.id == "db"
        for node in ast.walk(function)
        if isinstance(node, ast.With)
        for item in node.items
    )


def test_every_database_function_that_opens_a_transaction_is_retried_and_nothing_else_opens_one() -> None:
    unretried, outside = [], []
    for path in sorted((REPO_ROOT / "farm").rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for function in (node for node in ast.walk(tree) if isinstance(node, ast.FunctionDef)):
            if not _opens_a_transaction(function):
                continue
            where = f"{path.relative_to(REPO_ROOT)}:{function.lineno} {function.name}"
            if path.parent.name != "db":
                outside.append(where)
            elif not any(isinstance(d, ast.Name) and d.id == "transaction" for d in function.decorator_list):
                unretried.append(where)
    assert unretried == [], "mark them @transaction (farm.db.retry)"
    assert outside == [], "reach the database through farm.db's functions"


# ---- what is transient --------------------------------------------------------------------------------------


@contextmanager
def sqlite_write_lock(path: Path) -> Iterator[sqlite3.Connection]:
    """Another process's writer, as SQLite sees it: a connection holding the write lock until the block ends."""
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")
    try:
        yield holder
    finally:
        holder.execute("ROLLBACK")
        holder.close()


def test_sqlite_locked_past_its_busy_timeout_is_transient_and_a_broken_constraint_is_not(
    tmp_path: Path, make_job: Callable[..., int]
) -> None:
    db = open_database(f"sqlite:///{tmp_path / 'farm.db'}")
    make_job(db)
    impatient = create_engine(f"sqlite:///{tmp_path / 'farm.db'}", connect_args={"timeout": 0.05})
    try:
        with sqlite_write_lock(tmp_path / "farm.db"):
            with pytest.raises(DBAPIError) as locked:
                with impatient.begin() as connection:
                    connection.execute(text("UPDATE jobs SET priority = 1"))
        assert "database is locked" in str(locked.value)
        assert is_transient(locked.value)
        with pytest.raises(IntegrityError) as duplicate, impatient.begin() as connection:
            connection.execute(text("INSERT INTO shots SELECT * FROM shots"))
        assert not is_transient(duplicate.value)
        with pytest.raises(DBAPIError) as missing, impatient.begin() as connection:
            connection.execute(text("SELECT * FROM no_such_table"))
        assert not is_transient(missing.value)
        assert not is_transient(LostRace("someone else moved it"))
    finally:
        impatient.dispose()
        db.dispose()


@pytest.fixture
def quick_busy_timeout(monkeypatch: pytest.MonkeyPatch) -> None:
    """SQLite gives up on a held lock after 50 ms instead of 30 s, so the retry is what waits it out."""
    monkeypatch.setattr(connect, "SQLITE_BUSY_TIMEOUT_MS", 50)


@pytest.mark.usefixtures("quick_busy_timeout")
def test_a_write_waits_out_a_lock_held_past_the_busy_timeout(
    tmp_path: Path, make_job: Callable[..., int], caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "farm.db"
    db = open_database(f"sqlite:///{path}", retry=RetryPolicy(deadline_seconds=60))
    job = make_job(db)
    released = threading.Event()

    def hold_for_a_second() -> None:
        with sqlite_write_lock(path):
            released.wait(1.0)

    holder = threading.Thread(target=hold_for_a_second)
    with caplog.at_level(logging.WARNING, logger=RETRY_LOG):
        holder.start()
        time.sleep(0.1)  # the holder has the lock (it takes it at once); the write below must wait for it
        record_event(db, job, kind=EventKind.JOB_DRIVER, by="test", message="written after the lock")
    holder.join()
    assert event_count(db, job_id=job, message="written after the lock") == 1
    assert any("database is locked" in record.getMessage() for record in caplog.records), "it was retried"
    db.dispose()


@pytest.mark.usefixtures("quick_busy_timeout")
def test_past_the_deadline_the_error_names_the_database_the_operation_and_how_to_resume(
    tmp_path: Path, make_job: Callable[..., int]
) -> None:
    path = tmp_path / "farm.db"
    db = open_database(f"sqlite:///{path}", retry=RetryPolicy(deadline_seconds=0.5))
    job = make_job(db)
    with sqlite_write_lock(path), pytest.raises(DatabaseOutage) as outage:
        transition_job(db, job, JobState.RENDERING, by="driver@test")
    message = str(outage.value)
    assert f"database sqlite:///{path}: transition_job (job_id {job}) failed for" in message
    assert "database is locked" in message
    assert f"farm render --resume {job}" in message
    assert outage.value.exit_code == 1
    db.dispose()
    with sqlite_write_lock(path):  # the outage clock is the database's: a later call gives up at once
        db = open_database(f"sqlite:///{path}", retry=RetryPolicy(deadline_seconds=0.5))
        with pytest.raises(DatabaseOutage):
            transition_job(db, job, JobState.RENDERING, by="driver@test")
        started = time.monotonic()
        with pytest.raises(DatabaseOutage):
            transition_job(db, job, JobState.RENDERING, by="driver@test")
        assert time.monotonic() - started < 0.4, "the second call waited the deadline again"
    assert transition_job(db, job, JobState.RENDERING, by="driver@test") is JobState.QUEUED, "resumable"
    db.dispose()


@pytest.mark.usefixtures("quick_busy_timeout")
def test_the_cli_reports_an_outage_in_one_located_line_and_exits_non_zero(
    tmp_path: Path, make_job: Callable[..., int], monkeypatch: pytest.MonkeyPatch
) -> None:
    data = tmp_path / "data"
    path = data / "farm.db"
    db = open_database(f"sqlite:///{path}")
    job = make_job(db)
    db.dispose()
    monkeypatch.setenv("FARM_DATABASE_RETRY_SECONDS", "0.5")
    with sqlite_write_lock(path):
        result = CliRunner().invoke(cli, ["cancel", str(job), "--data-dir", str(data)])
    assert result.exit_code == 1, result.output
    assert "Traceback" not in result.output and "internal error" not in result.output
    assert f"cancel_job (job_id {job}) failed for" in result.output
    assert "database is locked" in result.output and f"farm render --resume {job}" in result.output


def test_the_retry_deadline_is_a_setting(tmp_path: Path) -> None:
    assert resolve_settings(data_dir=tmp_path, environ={}).database_retry_seconds == 180.0
    (tmp_path / "farm.toml").write_text("[farm]\ndatabase_retry_seconds = 30\n")
    assert resolve_settings(data_dir=tmp_path, environ={}).database_retry_seconds == 30.0
    environ = {"FARM_DATABASE_RETRY_SECONDS": "7"}
    assert resolve_settings(data_dir=tmp_path, environ=environ).database_retry_seconds == 7.0


# ---- PostgreSQL: a terminated connection, and a commit whose acknowledgement was lost ------------------------


@pytest.fixture
def admin_engine(postgres_server_url: URL) -> Iterator[Engine]:
    """A connection of the test's own to the farm's database, to terminate the farm's backends from."""
    engine = create_engine(url_string(postgres_server_url), isolation_level="AUTOCOMMIT")
    yield engine
    engine.dispose()


def terminate_farm_backends(admin: Engine) -> int:
    """What a failover does to the farm: every other session on its database is terminated."""
    with admin.connect() as connection:
        return len(
            connection.execute(
                text(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                    "WHERE datname = current_database() AND pid <> pg_backend_pid()"
                )
            ).all()
        )


def test_a_terminated_postgresql_connection_is_transient_and_retried(
    postgres_database: Database, admin_engine: Engine, make_job: Callable[..., int]
) -> None:
    db = postgres_database
    job = make_job(db)
    with db.sql_engine.connect() as doomed:
        doomed.execute(text("SELECT 1"))
        terminate_farm_backends(admin_engine)
        with pytest.raises(DBAPIError) as shut_down:
            doomed.execute(text("SELECT 1"))
    assert is_transient(shut_down.value), shut_down.value
    assert terminate_farm_backends(admin_engine) >= 0  # the pool's idle connections are dead now too
    assert transition_job(db, job, JobState.RENDERING, by="driver@test") is JobState.QUEUED


@contextmanager
def acknowledgement_lost_once(db: Database, admin: Engine) -> Iterator[list[int]]:
    """The next commit lands on the server, then its connection is terminated before the client hears back:
    the client sees AdminShutdown for a transaction that is in fact committed. Yields the pids it killed."""
    killed: list[int] = []

    def commit_then_die(connection: Any) -> None:
        if killed:
            return
        raw = connection.connection.dbapi_connection
        raw.commit()  # the transaction is on the server now
        pid = raw.info.backend_pid
        killed.append(pid)
        with admin.connect() as admin_connection:
            admin_connection.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
            deadline = time.monotonic() + 10
            while admin_connection.execute(
                text("SELECT count(*) FROM pg_stat_activity WHERE pid = :pid"), {"pid": pid}
            ).scalar_one():
                assert time.monotonic() < deadline, "the backend outlived its termination"
                time.sleep(0.02)
        raw.execute("SELECT 1")  # the answer the client waits for: the server is gone

    event.listen(db.sql_engine, "commit", commit_then_die)
    try:
        yield killed
    finally:
        event.remove(db.sql_engine, "commit", commit_then_die)


def test_a_retried_transition_whose_commit_landed_never_doubles_an_event(
    postgres_database: Database,
    admin_engine: Engine,
    make_job: Callable[..., int],
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING, logger=RETRY_LOG)
    db = postgres_database
    job = make_job(db)
    pk = shot_pks(db, job)["a"]

    with acknowledgement_lost_once(db, admin_engine) as killed:
        assert transition_job(db, job, JobState.RENDERING, by="driver@test") is JobState.QUEUED
    assert killed, "the fault was injected"
    with acknowledgement_lost_once(db, admin_engine) as killed:
        attempt = start_logged_attempt(db, pk, worker="w1", node="n1", device="cpu", by="driver@test")
    assert killed
    with acknowledgement_lost_once(db, admin_engine) as killed:
        assert finish_attempt(
            db, attempt.render_id, outcome=AttemptState.SUCCEEDED, shot_state=ShotState.DONE, by="driver@test"
        ), "the caller hears that its finish landed, as it did"
    assert killed
    with acknowledgement_lost_once(db, admin_engine) as killed:
        record_event(db, job, kind=EventKind.JOB_DRIVER, by="driver@test", message="one note")
    assert killed

    retried = [record.getMessage() for record in caplog.records if record.name == RETRY_LOG]
    assert len(retried) == 4 and all("AdminShutdown" in line for line in retried), retried
    with db.read() as connection:
        renders = connection.execute(select(Render.c.id, Render.c.state).where(Render.c.shot_id == pk)).all()
        job_state = connection.execute(select(Job.c.state).where(Job.c.id == job)).scalar_one()
    assert [(row.id, row.state) for row in renders] == [(attempt.render_id, AttemptState.SUCCEEDED)]
    assert job_state is JobState.RENDERING
    assert event_count(db, job_id=job, kind=EventKind.JOB_STATE, new_state="rendering") == 1
    assert event_count(db, shot_id=pk, kind=EventKind.SHOT_STARTED) == 1
    assert event_count(db, render_id=attempt.render_id, kind=EventKind.RENDER_FINISHED) == 1
    assert event_count(db, shot_id=pk, kind=EventKind.SHOT_FINISHED) == 1
    assert event_count(db, job_id=job, kind=EventKind.JOB_DRIVER) == 1


# ---- a connection storm during a render ---------------------------------------------------------------------


SMALL = replace_once(TEMPLATE, "width: 480\n  height: 832", "width: 96\n  height: 64")


STORM_SHOTS = 20


def storm_shots() -> str:
    """Enough shots that the render outlasts a storm of 20 terminations on a fast machine."""
    lines = [SMALL.split("scenes:")[0] + "scenes:", "  - id: sc", "    shots:"]
    for index in range(STORM_SHOTS):
        start = round(index * 0.2, 2)
        lines.append(
            f"      - {{id: s{index:02d}, character: marcus, prompt: shot {index}, "
            f"audio: {{track: sc01, in: {start}, out: {round(start + 1.2, 2)}}}}}"
        )
    return "\n".join(lines) + "\n"


@pytest.fixture(scope="module")
def cluster() -> Iterator[Cluster]:
    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 0, "include_dashboard": False})
    for index in range(2):
        cluster.add_node(num_cpus=2, num_gpus=1, env_vars={"FARM_TEST_NODE": f"n{index}"})
    cluster.wait_for_nodes()
    yield cluster
    cluster.shutdown()


def storm(admin: Engine, caplog: pytest.LogCaptureFixture, driver: threading.Thread) -> list[int]:
    """Terminate every farm backend every 50 ms while the driver runs, until 20 were terminated and one of them
    hit a query (a round that only meets idle pooled connections proves little: pre-ping replaces them);
    the count per round."""
    killed: list[int] = []
    deadline = time.monotonic() + 120
    while driver.is_alive() and time.monotonic() < deadline:
        if retries_logged(caplog) and sum(killed) >= 20:
            break
        killed.append(terminate_farm_backends(admin))
        time.sleep(0.05)
    return killed


def retries_logged(caplog: pytest.LogCaptureFixture) -> int:
    return sum(1 for record in caplog.records if record.name == RETRY_LOG)


@pytest.mark.ray
def test_a_render_rides_out_a_storm_of_terminated_connections(
    cluster: Cluster,
    postgres_database: Database,
    admin_engine: Engine,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    url = url_string(postgres_database.url)
    settings = resolve_settings(
        data_dir=tmp_path / "data", database_url=url, models_dir=REPO_ROOT / "models", ray_address=cluster.address
    )
    shot_list = make_project(tmp_path / "project", storm_shots())
    db = open_database(url, data_dir=settings.data_dir)
    job = submit_shot_list(db, settings, shot_list).job_id
    results: dict[int, JobOutcome] = {}
    failures: list[BaseException] = []

    def drive() -> None:
        driver_db = open_database(url, data_dir=settings.data_dir)
        try:
            results[job] = drive_job(driver_db, settings, job)
        except BaseException as error:
            failures.append(error)
            raise
        finally:
            driver_db.dispose()

    ray.init(address=cluster.address, log_to_driver=False)
    try:
        with caplog.at_level(logging.WARNING, logger=RETRY_LOG):
            driver = threading.Thread(target=drive, name="driver")
            driver.start()
            deadline = time.monotonic() + 300
            while event_count(db, job_id=job, kind=EventKind.RENDER_FINISHED) < 2:  # mid-render: shots in flight
                assert driver.is_alive() and time.monotonic() < deadline, f"the render did not start: {failures}"
                time.sleep(0.1)
            killed = storm(admin_engine, caplog, driver)
            driver.join(timeout=600)
            assert not driver.is_alive(), "the driver did not finish"
    finally:
        ray.shutdown()

    assert not failures, failures
    assert sum(killed) >= 20, f"the render ended before 20 terminations; backends terminated per round: {killed}"
    assert retries_logged(caplog), "the storm reached the driver, and the driver retried"
    assert results[job].state is JobState.ASSEMBLING and results[job].done == STORM_SHOTS
    with db.read() as connection:
        succeeded = Counter(
            connection.execute(
                select(Shot.c.shot_id)
                .join(Render, Render.c.shot_id == Shot.c.id)
                .where(Shot.c.job_id == job, Render.c.state == AttemptState.SUCCEEDED)
            ).scalars()
        )
        attempts = connection.execute(
            select(func.count())
            .select_from(Render)
            .join(Shot, Shot.c.id == Render.c.shot_id)
            .where(Shot.c.job_id == job)
        ).scalar_one()
        still_running = connection.execute(
            select(func.count()).select_from(Render).where(Render.c.state == AttemptState.RUNNING)
        ).scalar_one()
    assert len(succeeded) == STORM_SHOTS and set(succeeded.values()) == {1}, f"renders per shot: {succeeded}"
    assert still_running == 0
    assert event_count(db, job_id=job, kind=EventKind.SHOT_STARTED) == attempts, "one start event per attempt"
    assert event_count(db, job_id=job, kind=EventKind.RENDER_FINISHED) == attempts, "one end event per attempt"
    db.dispose()
