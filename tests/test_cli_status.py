"""``farm status``, ``farm events`` and ``farm db`` as a person runs them, on rows the state machine wrote."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, fields, replace
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from farm.db import migrate
from farm.db.jobs import transition_job
from farm.db.kinds import ArtifactKind
from farm.db.lease import heartbeat
from farm.db.products import ArtifactRecord, NewEdit, record_artifact, record_edit
from farm.db.queries import job_events, shots_of_job
from farm.db.records import ShotRow
from farm.db.session import Database, open_database
from farm.db.shots import finish_attempt, mark_cached, report_progress, start_attempt
from farm.db.states import AttemptState, JobState, ShotState
from farm.plan import Plan
from farm.settings import REPO_ROOT
from farm.verdicts import Verdict
from tests.db_records import submit_plan

ERROR = "no face found in media/walter.jpg; use a portrait with one visible face"


def farm(*args: str, data_dir: Path, url: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "farm", *args, "--db", url],
        env=_env(data_dir),
        capture_output=True,
        text=True,
        timeout=120,
    )


def _env(data_dir: Path) -> dict[str, str]:
    return {**os.environ, "FARM_DATA_DIR": str(data_dir), "PYTHONPATH": str(REPO_ROOT), "TZ": "UTC"}


@dataclass(frozen=True)
class Rendered:
    """A job mid-render: a rendered, b failed, c (which continues a) rendering now at 40 %."""

    job_id: int
    url: str
    data_dir: Path


@pytest.fixture
def rendered(database_url: str, plan: Plan, tmp_path: Path) -> Rendered:
    with open_database(database_url) as db:
        job_id = submit_plan(db, plan, submitted_by="producer", quality="preview", priority=3)
        shots = {shot.shot_id: shot.pk for shot in shots_of_job(db, job_id)}
        transition_job(db, job_id, JobState.RENDERING, by="driver")
        heartbeat(db, job_id, "render01:4242")
        first = start_attempt(db, shots["a"], worker="RenderWorker-0", node="gpu-1", device="cuda:0", by="driver")
        video = ArtifactRecord(plan.tasks[0].cache_key, ArtifactKind.SHOT_VIDEO, "/store/a.mp4", 2048, "a" * 64,
                               plan.tasks[0].frames, 2.36)  # fmt: skip
        finish_attempt(db, first, outcome=AttemptState.SUCCEEDED, shot_state=ShotState.DONE, by="driver",
                       artifacts=[video], gpu_seconds=1800.0)  # fmt: skip
        second = start_attempt(db, shots["b"], worker="RenderWorker-1", node="gpu-2", device="cuda:1", by="driver")
        finish_attempt(db, second, outcome=AttemptState.FAILED, shot_state=ShotState.FAILED, by="driver",
                       error_class="RenderError", error_message=ERROR, gpu_seconds=60.0)  # fmt: skip
        third = start_attempt(db, shots["c"], worker="RenderWorker-0", node="gpu-1", device="cuda:0", by="driver")
        report_progress(db, third, 0.4, "denoise")
    return Rendered(job_id, database_url, tmp_path / "data")


def test_status_lists_recent_jobs(rendered: Rendered) -> None:
    result = farm("status", data_dir=rendered.data_dir, url=rendered.url)

    assert result.returncode == 0, result.stderr
    row = next(line for line in result.stdout.splitlines() if "Test Show 07" in line)
    for cell in (str(rendered.job_id), "rendering", "1/3", "producer", "0.52"):
        assert cell in row


def test_status_of_a_job_shows_failures_first_then_scenes_and_shots(rendered: Rendered) -> None:
    result = farm("status", str(rendered.job_id), data_dir=rendered.data_dir, url=rendered.url)

    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert f"Job {rendered.job_id}  Test Show 07  rendering" in out
    assert "shots 1/3 done · 1 failed · 1 running · 0 queued" in out
    assert "ETA " in out and "GPU 0.52 h" in out
    assert "driver render01:4242" in out
    assert out.index("Failed shots (1)") < out.index("Scenes") < out.index("Shots")
    failure = next(line for line in out.splitlines() if line.startswith("│ b "))
    assert "gpu-2 (cuda:1)" in failure and "RenderError: no face found" in failure
    shot_lines = {line.split("│")[3].strip(): line for line in out.splitlines() if line.count("│") > 9}
    assert "done" in shot_lines["a"] and "/store/a.mp4" in shot_lines["a"]
    assert "running" in shot_lines["c"] and "40% denoise" in shot_lines["c"]


def test_the_page_of_a_job_fits_80_columns_keeping_what_each_shot_is_doing(rendered: Rendered) -> None:
    env = {**_env(rendered.data_dir), "COLUMNS": "80"}
    result = subprocess.run(
        [sys.executable, "-m", "farm", "status", str(rendered.job_id), "--db", rendered.url],
        env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip

    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert max(len(line) for line in lines) <= 80, "\n".join(line for line in lines if len(line) > 80)
    failures = result.stdout[result.stdout.index("Failed shots (1)") : result.stdout.index("Scenes")]
    error_cells = [line.split("│")[4].strip() for line in failures.splitlines() if line.startswith("│")]
    assert ERROR in " ".join(error_cells), failures  # wrapped over lines, never cut
    shots = result.stdout[result.stdout.index("Shots") :]
    header = next(line for line in shots.splitlines() if "shot" in line and "state" in line)
    assert "artifact" not in header and "/store/a.mp4" not in shots, "the artifact path only where there is room"
    assert "40% denoise" in shots and "running" in shots


def test_status_json_of_a_job_is_the_database_rows(rendered: Rendered) -> None:
    result = farm("status", str(rendered.job_id), "--json", data_dir=rendered.data_dir, url=rendered.url)

    assert result.returncode == 0, result.stderr
    status = json.loads(result.stdout)
    job = status["job"]
    assert (job["id"], job["state"], job["priority"], job["submitted_by"]) == (
        rendered.job_id,
        "rendering",
        3,
        "producer",
    )
    assert {key: job["shots"][key] for key in ("total", "done", "failed", "running", "queued")} == {
        "total": 3,
        "done": 1,
        "failed": 1,
        "running": 1,
        "queued": 0,
    }
    assert job["gpu_seconds"] == 1860.0
    assert job["eta_seconds"] is not None and job["eta_seconds"] > 0
    assert job["submitted_at"].endswith("+00:00")
    shots = {shot["shot_id"]: shot for shot in status["shots"]}
    assert (shots["a"]["state"], shots["a"]["artifact_path"], shots["a"]["attempts"]) == ("done", "/store/a.mp4", 1)
    assert (shots["b"]["state"], shots["b"]["last_error"], shots["b"]["node"]) == (
        "failed",
        f"RenderError: {ERROR}",
        "gpu-2",
    )
    assert (shots["c"]["state"], shots["c"]["progress"], shots["c"]["phase"]) == ("running", 0.4, "denoise")
    assert list(shots["a"]) == [field.name for field in fields(ShotRow)]
    started, finished = (datetime.fromisoformat(shots["a"][key]) for key in ("started_at", "finished_at"))
    assert started.utcoffset() == timedelta(0)
    assert shots["a"]["duration_seconds"] == (finished - started).total_seconds()
    assert [scene["scene_id"] for scene in status["scenes"]] == ["sc01"]
    assert status["latest_edit"] is None


def test_status_json_lists_jobs_newest_first(rendered: Rendered, plan: Plan) -> None:
    with open_database(rendered.url) as db:
        newer = submit_plan(db, plan, submitted_by="editor", quality="final")
        shots = shots_of_job(db, newer)
        artifact = record_artifact(
            db, ArtifactRecord("x" * 64, ArtifactKind.SHOT_VIDEO, "/x.mp4", 1, "x" * 64, 1, 0.04)
        )
        mark_cached(db, shots[0].pk, artifact, by="driver")

    result = farm("status", "--json", data_dir=rendered.data_dir, url=rendered.url)

    assert result.returncode == 0, result.stderr
    jobs = json.loads(result.stdout)["jobs"]
    assert [job["id"] for job in jobs] == [newer, rendered.job_id]
    assert (jobs[0]["state"], jobs[0]["shots"]["cached"], jobs[0]["shots"]["queued"]) == ("queued", 1, 2)


def test_events_prints_the_audit_log(rendered: Rendered) -> None:
    table = farm("events", str(rendered.job_id), data_dir=rendered.data_dir, url=rendered.url)
    to_json = farm("events", str(rendered.job_id), "--json", data_dir=rendered.data_dir, url=rendered.url)

    assert table.returncode == 0, table.stderr
    assert "queued -> running" in table.stdout
    failed = next(line for line in table.stdout.splitlines() if "render.finished" in line and " b " in line)
    assert "running -> failed" in failed and "RenderError" in failed
    with open_database(rendered.url) as db:
        expected = job_events(db, rendered.job_id)
    events = json.loads(to_json.stdout)["events"]
    assert [(event["kind"], event["shot_id"], event["new_state"]) for event in events] == [
        (event.kind, event.shot_id, event.new_state) for event in expected
    ]


def test_watch_follows_a_job_until_it_finishes(rendered: Rendered) -> None:
    watcher = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "farm",
            "status",
            str(rendered.job_id),
            "--watch",
            "--interval",
            "0.2",
            "--db",
            rendered.url,
        ],
        env=_env(rendered.data_dir),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    time.sleep(1.5)
    assert watcher.poll() is None, watcher.communicate()
    with open_database(rendered.url) as db:
        # A driver records the edit before it settles the job: the watcher stops at the settle.
        record_edit(db, rendered.job_id, NewEdit("/edits/v1.mp4", None, None, Verdict.WARN, {}), by="driver")
        transition_job(db, rendered.job_id, JobState.FAILED, by="driver")
    out, err = watcher.communicate(timeout=60)

    assert watcher.returncode == 0, err
    assert f"Job {rendered.job_id}  Test Show 07  failed" in out
    assert "Edit v1" in out and "/edits/v1.mp4" in out


def test_unknown_job_is_bad_input_without_a_traceback(rendered: Rendered) -> None:
    result = farm("status", "999", data_dir=rendered.data_dir, url=rendered.url)

    assert result.returncode == 2
    assert "job 999 is not in the database" in result.stderr
    assert "Traceback" not in result.stderr


def test_watch_and_json_together_are_a_usage_error(tmp_path: Path) -> None:
    result = farm("status", "--watch", "--json", data_dir=tmp_path, url=f"sqlite:///{tmp_path / 'farm.db'}")

    assert result.returncode == 2
    assert "--watch" in result.stderr


def test_status_loads_its_command_alone(tmp_path: Path) -> None:
    """Commands load lazily: a producer's `farm status` does not pay for the planner, numpy or jsonschema."""
    probe = (
        "import sys\n"
        "from farm.cli import cli\n"
        "assert cli.get_command(None, 'status').name == 'status'\n"
        "print(sorted(name for name in ('numpy', 'jsonschema', 'farm.plan', 'torch', 'ray') if name in sys.modules))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe], env=_env(tmp_path), capture_output=True, text=True, timeout=120
    )

    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"


def test_every_command_module_is_mapped_and_every_mapped_command_loads() -> None:
    import importlib

    from farm.cli import _COMMAND_MODULES, cli

    defined = {
        command.name: module
        for module in set(_COMMAND_MODULES.values())
        for command in importlib.import_module(f"farm.cli.{module}").COMMANDS
    }
    assert defined == _COMMAND_MODULES
    assert all(cli.get_command(None, name).name == name for name in _COMMAND_MODULES)  # type: ignore[union-attr]


def test_db_upgrade_creates_the_schema_once(database_url: str, tmp_path: Path) -> None:
    first = farm("db", "upgrade", data_dir=tmp_path, url=database_url)
    again = farm("db", "upgrade", data_dir=tmp_path, url=database_url)
    current = farm("db", "current", "--json", data_dir=tmp_path, url=database_url)

    head = migrate.head_revision()
    assert first.returncode == 0, first.stderr
    assert f"schema (empty) -> {head}" in first.stdout
    assert f"already at schema {head}" in again.stdout
    assert json.loads(current.stdout)["up_to_date"] is True


def test_a_read_pointed_at_a_missing_data_dir_says_which_database_and_creates_nothing(tmp_path: Path) -> None:
    """A producer's typo in FARM_DATA_DIR is not "no jobs yet": a read never creates a database."""
    for command in (["status"], ["status", "1"], ["events", "1"], ["db", "current"]):
        result = subprocess.run(
            [sys.executable, "-m", "farm", *command],
            env={**_env(tmp_path / "typo"), "FARM_DATABASE_URL": ""},
            capture_output=True,
            text=True,
            timeout=120,
        )

        assert result.returncode == 2, (command, result.stdout, result.stderr)
        assert f"no farm database at {tmp_path / 'typo' / 'farm.db'}" in result.stderr, command
        assert "Traceback" not in result.stderr
        assert not (tmp_path / "typo").exists(), command


def test_status_of_the_default_database_after_a_write_needs_no_server(tmp_path: Path) -> None:
    open_database(f"sqlite:///{tmp_path / 'data' / 'farm.db'}").dispose()  # what a first submit creates
    result = subprocess.run(
        [sys.executable, "-m", "farm", "status"],
        env={**_env(tmp_path / "data"), "FARM_DATABASE_URL": ""},
        capture_output=True,
        text=True,
        timeout=120,
    )

    assert result.returncode == 0, result.stderr
    assert "No jobs yet" in result.stdout


def test_a_big_job_lists_its_running_shots_unless_asked_for_all(tmp_path: Path, plan: Plan) -> None:
    url = f"sqlite:///{tmp_path / 'farm.db'}"
    tasks = tuple(replace(plan.tasks[i % 3], shot_id=f"s{i:03d}", order=i, continues=None) for i in range(150))
    with open_database(url) as db:
        job_id = submit_plan(db, replace(plan, tasks=tasks), submitted_by="producer", quality="preview")
        start_attempt(db, shots_of_job(db, job_id)[7].pk, worker="w", node="gpu-1", device="cuda:0", by="d")

    default = farm("status", str(job_id), data_dir=tmp_path, url=url).stdout
    everything = farm("status", str(job_id), "--all", data_dir=tmp_path, url=url).stdout
    queued = farm("status", str(job_id), "--state", "queued", data_dir=tmp_path, url=url).stdout

    assert "Shots (1 of 150)" in default and "149 other shots not listed" in default
    assert "│ s007 " in default and "│ s008 " not in default
    assert all(f"│ s{i:03d} " in everything for i in range(150))
    assert "Shots (149 of 150)" in queued and "│ s007 " not in queued and "not listed" not in queued


def test_a_waiting_job_that_nobody_drives_says_so_instead_of_an_eta(
    database_url: str, plan: Plan, tmp_path: Path
) -> None:
    with open_database(database_url) as db:
        orphan = submit_plan(db, plan, submitted_by="editor", quality="preview")
        driven = submit_plan(db, plan, submitted_by="editor", quality="preview")
        heartbeat(db, driven, "manager@render01-4242")
        stop = threading.Event()
        # the driver beats on while the commands run, however long a loaded machine takes to start them
        beating = threading.Thread(target=_beat, args=(db, driven, stop), daemon=True)
        beating.start()
        try:
            listing = farm("status", data_dir=tmp_path / "data", url=database_url)
            page = farm("status", str(orphan), data_dir=tmp_path / "data", url=database_url)
            live = farm("status", str(driven), data_dir=tmp_path / "data", url=database_url)
        finally:
            stop.set()
            beating.join()

    assert listing.returncode == page.returncode == live.returncode == 0, listing.stderr + page.stderr
    orphan_row = next(line for line in listing.stdout.splitlines() if line.lstrip("│ ").startswith(f"{orphan} "))
    assert "nobody drives it" in orphan_row
    assert "no one drives this job: start `farm serve`" in page.stdout
    assert "no one drives" not in live.stdout and "nobody drives" not in live.stdout


def _beat(db: Database, job_id: int, stop: threading.Event) -> None:
    while not stop.wait(1.0):
        heartbeat(db, job_id, "manager@render01-4242")
