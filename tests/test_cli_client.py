"""``farm ... --server URL``: the command as a client of a running farm manager, run as a person runs it
(a real process, the real API server). The client machine has no database and needs none.

The API itself runs on both backends in test_api.py; here the farm behind it is a SQLite file.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from farm.settings import REPO_ROOT
from tests.api_farm import ServedFarm, served
from tests.db_records import make_farm
from tests.light import light_farm
from tests.shotlists import TEMPLATE, make_project, replace_once


@dataclass(frozen=True)
class Laptop:
    """A machine with farm installed, no database and no Ray, and the manager it talks to."""

    home: Path
    manager: ServedFarm

    def farm(
        self, *args: str, who: str | None = "alice", cwd: Path | None = None, **env: str
    ) -> subprocess.CompletedProcess[str]:
        token = ["--token", self.manager.tokens[who]] if who else []
        return subprocess.run(
            [
                sys.executable,
                "-m",
                "farm",
                *args,
                *(["--server", self.manager.url] if "FARM_SERVER" not in env else []),
                *token,
            ],
            env={**os.environ, "FARM_DATA_DIR": str(self.home), "PYTHONPATH": str(REPO_ROOT), "TZ": "UTC", **env},
            cwd=cwd,
            capture_output=True,
            text=True,
            timeout=120,
        )


@pytest.fixture
def laptop(tmp_path: Path) -> Iterator[Laptop]:
    farm = make_farm(f"sqlite:///{tmp_path / 'manager' / 'farm.db'}", tmp_path / "manager")
    with farm, served(farm) as manager:
        home = tmp_path / "laptop"
        home.mkdir()
        yield Laptop(home, manager)
        assert list(home.iterdir()) == [], "the client wrote to its data dir"


@pytest.fixture
def shot_list(tmp_path: Path) -> Path:
    return make_project(tmp_path / "project")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_submit_sends_the_absolute_path_and_status_shows_the_job(laptop: Laptop, shot_list: Path) -> None:
    submitted = laptop.farm("submit", "ep.yaml", "--priority", "3", cwd=shot_list.parent)
    listed = laptop.farm("status")
    page = laptop.farm("status", "1")
    as_json = laptop.farm("status", "1", "--json")

    assert submitted.returncode == 0, submitted.stderr
    assert f"job 1 submitted to {laptop.manager.url} (3 shots)" in submitted.stdout
    job = laptop.manager.farm.submitted_job(1)
    assert (job.shot_list_path, job.submitted_by, job.priority) == (str(shot_list), "alice", 3)
    row = next(line for line in listed.stdout.splitlines() if "Test Show 07" in line)
    assert "queued" in row and "alice" in row and "0/3" in row
    assert "Job 1  Test Show 07  queued  (preview, priority 3)" in page.stdout
    assert "shots 0/3 done · 0 failed · 0 running · 3 queued" in page.stdout
    detail = json.loads(as_json.stdout)
    assert (detail["job"]["id"], detail["job"]["shots"]["total"], len(detail["shots"])) == (1, 3, 3)


def test_submit_upload_sends_the_folder_and_a_key_makes_it_once(laptop: Laptop, shot_list: Path) -> None:
    first = laptop.farm("submit", str(shot_list), "--upload", "--idempotency-key", "ep07", "--json")
    again = laptop.farm("submit", str(shot_list), "--upload", "--idempotency-key", "ep07")

    assert first.returncode == 0, first.stderr
    assert json.loads(first.stdout)["replayed"] is False
    assert "job 1 submitted" in again.stdout and "already submitted with this key" in again.stdout
    uploads = laptop.manager.farm.settings.data_dir / "uploads"
    assert laptop.manager.farm.submitted_job(1).shot_list_path.startswith(str(uploads))
    assert laptop.manager.job_count() == 1


def test_events_logs_cancel_and_retry_over_the_api(laptop: Laptop, shot_list: Path) -> None:
    laptop.farm("submit", str(shot_list))

    cancelled = laptop.farm("cancel", "1", FARM_SERVER=laptop.manager.url)
    events = laptop.farm("events", "1", "--limit", "5")
    logs = laptop.farm("logs", "1")
    retried = laptop.farm("retry", "1", "--shot", "a")

    assert cancelled.returncode == 0, cancelled.stderr
    assert "job 1 cancelled (3 queued shots cancelled" in cancelled.stdout
    lines = events.stdout.splitlines()
    assert len(lines) == 5 and "job.state" in events.stdout and "alice" in lines[-1]
    assert "no render attempts yet" in logs.stdout
    assert "job 1: 1 shot(s) re-queued" in retried.stdout
    assert laptop.manager.farm.status(1).job.state == "queued"


def test_the_light_install_on_windows_submits_and_reads_over_the_api(laptop: Laptop, shot_list: Path) -> None:
    """No torch, Ray, diffusers, nor pwd or fcntl: the client of a manager works as on an editor's laptop."""
    server = ["--server", laptop.manager.url, "--token", laptop.manager.tokens["alice"]]
    home = {"FARM_DATA_DIR": str(laptop.home), "TZ": "UTC"}

    submitted = light_farm("submit", str(shot_list), "--json", *server, **home)
    status = light_farm("status", "1", "--json", *server, **home)
    logs = light_farm("logs", "1", *server, **home)

    assert submitted.returncode == 0, submitted.stderr[-3000:]
    assert json.loads(submitted.stdout)["job"] == 1
    assert status.returncode == 0 and json.loads(status.stdout)["job"]["state"] == "queued", status.stderr[-3000:]
    assert "no render attempts yet" in logs.stdout, logs.stderr[-3000:]
    assert laptop.manager.job_count() == 1


def test_an_invalid_shot_list_prints_the_servers_findings_and_exits_2(laptop: Laptop, tmp_path: Path) -> None:
    broken = make_project(tmp_path / "broken", replace_once(TEMPLATE, "fps: 25", "fps: 0"))

    result = laptop.farm("submit", str(broken))

    assert result.returncode == 2
    assert "ep.yaml:5:" in result.stderr and "output.fps" in result.stderr
    assert "Traceback" not in result.stderr
    assert laptop.manager.job_count() == 0


@pytest.mark.parametrize(
    ("args", "who", "message"),
    [
        (("status", "99"), "alice", "job 99 is not in the database"),
        (("cancel", "1"), "pat", "needs the admin or editor role"),
        (("cancel", "1"), "bob", "as its submitter"),
        (("status",), None, "needs a token: give --token or set FARM_TOKEN"),
    ],
)
def test_what_the_server_refuses_is_its_message_and_exit_2(
    laptop: Laptop, shot_list: Path, args: tuple[str, ...], who: str | None, message: str
) -> None:
    laptop.farm("submit", str(shot_list))

    result = laptop.farm(*args, who=who)

    assert result.returncode == 2, result.stdout
    assert message in result.stderr and "Traceback" not in result.stderr


def test_a_bad_token_is_refused_with_the_servers_message(laptop: Laptop) -> None:
    result = laptop.farm("status", who=None, FARM_TOKEN="not-a-token")

    assert result.returncode == 2
    assert "the token is not valid" in result.stderr


def test_an_unreachable_manager_says_where_it_looked_and_how_to_start_one(tmp_path: Path) -> None:
    url = f"http://127.0.0.1:{free_port()}"

    result = subprocess.run(
        [sys.executable, "-m", "farm", "status", "--server", url, "--token", "t"],
        env={**os.environ, "FARM_DATA_DIR": str(tmp_path), "PYTHONPATH": str(REPO_ROOT)},
        capture_output=True,
        text=True,
        timeout=120,
    )

    assert result.returncode == 1
    assert f"cannot reach the farm manager at {url}" in result.stderr and "farm serve" in result.stderr
    assert "Traceback" not in result.stderr and result.stderr.count("\n") == 1
    assert list(tmp_path.iterdir()) == []


def test_the_client_loads_no_database_library_and_no_ray() -> None:
    code = (
        "import sys\n"
        "import farm.cli.client, farm.cli.db_commands, farm.cli.log_commands, farm.cli.render_commands\n"
        "print(sorted(m for m in ('sqlalchemy', 'ray', 'torch') if m in sys.modules))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], env={**os.environ, "PYTHONPATH": str(REPO_ROOT)}, capture_output=True, text=True
    )

    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"
