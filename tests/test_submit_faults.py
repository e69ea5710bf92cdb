"""Submit is all or nothing: a target that cannot be reached leaves no job, a head that refuses the driver
leaves a cancelled job (its shots too) that says why, and a head whose job agent is starting is waited out.

The Ray Jobs API is played by a small HTTP server on loopback speaking its two endpoints (the version check
and the job submission), so a head that is not ready yet, or refuses, is a fact of the test, not a race.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from sqlalchemy import func, select

from farm.db.queries import job_events, job_state, shots_of_job
from farm.db.session import open_database
from farm.db.states import JobState, ShotState
from farm.db.tables import Job
from farm.jobs import open_farm
from farm.jobs.detach import DriverNotStarted, submit_to_ray_jobs
from farm.settings import REPO_ROOT, Settings, resolve_settings
from tests.shotlists import make_project

NOT_READY = "No available agent to submit job, please try again later."


@dataclass
class JobsApi:
    """What the stand-in head answers: ``not_ready`` submissions refused as its agent starting, then
    ``refusal`` (an error text, answered with 500) or acceptance; every submission it saw."""

    not_ready: int = 0
    refusal: str | None = None
    faults: list[int | str] = field(default_factory=list)
    """Answered first, one a submission: an HTTP status (a gateway error) or "drop" (the connection closed
    with no answer, as a restarting head or a proxy resets it)."""
    submissions: list[dict[str, object]] = field(default_factory=list)


@pytest.fixture
def head() -> Iterator[tuple[str, JobsApi]]:
    api = JobsApi()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self._answer(200, {"version": "4", "ray_version": "2.60.0", "ray_commit": "test"})

        def do_POST(self) -> None:
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            api.submissions.append(body)
            if api.faults:
                fault = api.faults.pop(0)
                if fault == "drop":
                    self.close_connection = True
                    self.connection.shutdown(socket.SHUT_RDWR)
                else:
                    self._answer(int(fault), "upstream unavailable")
            elif len(api.submissions) <= api.not_ready:
                self._answer(503, NOT_READY)
            elif api.refusal is not None:
                self._answer(500, api.refusal)
            else:
                self._answer(200, {"submission_id": body["submission_id"], "job_id": body["submission_id"]})

        def _answer(self, status: int, body: object) -> None:
            data = (json.dumps(body) if not isinstance(body, str) else body).encode()
            self.send_response(status)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", api
    finally:
        server.shutdown()
        server.server_close()


def settings_in(tmp_path: Path) -> Settings:
    return resolve_settings(data_dir=tmp_path / "data", models_dir=REPO_ROOT / "models")


def test_a_head_whose_job_agent_is_starting_is_waited_out(head: tuple[str, JobsApi], tmp_path: Path) -> None:
    address, api = head
    api.not_ready = 3
    submission_id = submit_to_ray_jobs(settings_in(tmp_path), 7, address, wait_seconds=60)
    assert submission_id.startswith("farm-job-7-")
    assert len(api.submissions) == 4
    assert {entry["submission_id"] for entry in api.submissions} == {submission_id}  # one job, asked again


def test_gateway_errors_and_dropped_connections_are_asked_again_as_one_job(
    head: tuple[str, JobsApi], tmp_path: Path
) -> None:
    address, api = head
    api.faults = [502, "drop", 504, 503]
    submission_id = submit_to_ray_jobs(settings_in(tmp_path), 7, address, wait_seconds=60)
    assert len(api.submissions) == 5
    assert {entry["submission_id"] for entry in api.submissions} == {submission_id}


def test_a_head_that_keeps_failing_is_a_located_error_at_the_deadline(
    head: tuple[str, JobsApi], tmp_path: Path
) -> None:
    address, api = head
    api.faults = [502] * 10_000
    with pytest.raises(DriverNotStarted) as refused:
        submit_to_ray_jobs(settings_in(tmp_path), 7, address, wait_seconds=2)
    assert len(api.submissions) >= 2
    assert "status code 502" in str(refused.value)
    assert "the head kept failing for 2 s" in str(refused.value)


def test_a_job_agent_that_never_gets_ready_is_a_located_error_at_the_deadline(
    head: tuple[str, JobsApi], tmp_path: Path
) -> None:
    address, api = head
    api.not_ready = 10_000
    started = time.monotonic()
    with pytest.raises(DriverNotStarted) as refused:
        submit_to_ray_jobs(settings_in(tmp_path), 7, address, wait_seconds=2)
    assert time.monotonic() - started < 30
    assert len(api.submissions) >= 2  # retried, with backoff, until the deadline
    message = str(refused.value)
    assert message.startswith(f"--dashboard {address}: the cluster did not take the driver (")
    assert "still not ready after 2 s; check the head's logs" in message


def test_a_driver_the_head_refuses_cancels_the_job_and_its_shots_with_the_reason(
    head: tuple[str, JobsApi], tmp_path: Path
) -> None:
    address, api = head
    api.refusal = "runtime_env could not be set up"
    with open_farm(settings_in(tmp_path)) as farm:
        job = farm.submit(make_project(tmp_path / "p")).job_id
        with pytest.raises(DriverNotStarted, match=rf"runtime_env could not be set up.*job {job} is cancelled"):
            farm.start_driver(job, dashboard=address)
        db = farm.database(write=False)
        assert job_state(db, job) is JobState.CANCELLED
        assert {shot.state for shot in shots_of_job(db, job)} == {ShotState.CANCELLED}
        events = job_events(db, job)
        cancelled = [event for event in events if event.shot_id is None and event.new_state == JobState.CANCELLED]
        assert len(cancelled) == 1
        assert "its driver was not started" in cancelled[0].message
        assert "runtime_env could not be set up" in cancelled[0].message


def farm_cli(*args: str, data_dir: Path, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT), "FARM_DATA_DIR": str(data_dir), "RAY_AUTH_MODE": "disabled"}
    return subprocess.run(
        [sys.executable, "-m", "farm", *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=300
    )


def recorded_jobs(data_dir: Path) -> int:
    """How many job rows the data dir's database holds (0 when no database was even made)."""
    if not (data_dir / "farm.db").exists():
        return 0
    db = open_database(f"sqlite:///{data_dir / 'farm.db'}", read_only=True)
    try:
        with db.read() as connection:
            return connection.execute(select(func.count()).select_from(Job)).scalar_one()
    finally:
        db.dispose()


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.mark.parametrize(
    "command",
    [
        pytest.param(("submit", "ep.yaml", "--dashboard", "http://127.0.0.1:{port}"), id="submit --dashboard"),
        pytest.param(("submit", "ep.yaml", "--driver", "--address", "127.0.0.1:{port}"), id="submit --driver"),
        pytest.param(("render", "ep.yaml", "--address", "127.0.0.1:{port}"), id="render --address"),
    ],
)
def test_a_submit_that_cannot_reach_its_target_records_no_job(command: tuple[str, ...], tmp_path: Path) -> None:
    shot_list = make_project(tmp_path / "p")
    data = tmp_path / "data"
    port = closed_port()
    result = farm_cli(*(part.format(port=port) for part in command), data_dir=data, cwd=shot_list.parent)
    assert result.returncode == 2, result.stdout + result.stderr
    assert f"127.0.0.1:{port}" in result.stderr and "cannot reach" in result.stderr
    assert "Traceback" not in result.stderr and "internal error" not in result.stderr
    assert recorded_jobs(data) == 0
