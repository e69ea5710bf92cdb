"""``farm logs``: each attempt's captured output, read from the file its ``renders.log_path`` names; a log
never recorded or gone says so; ``--follow`` prints what a running attempt appends until it ends."""

from __future__ import annotations

import os
import queue
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from sqlalchemy import update

from farm.db.queries import shots_of_job
from farm.db.session import Database
from farm.db.shots import finish_attempt, start_attempt
from farm.db.states import AttemptState, ShotState
from farm.db.tables import Render
from farm.jobs import Farm, UnknownShot
from farm.jobs.logs import read_log
from farm.settings import REPO_ROOT
from tests.db_records import make_farm


@dataclass(frozen=True)
class Logged:
    """A job whose shot a failed once (log kept), then started again (log being written); b has no log."""

    farm: Farm
    job_id: int
    url: str
    data_dir: Path
    first_log: Path
    second_log: Path
    second_render: int


def attempt(db: Database, shot_pk: int, log: Path | None) -> int:
    render_id = start_attempt(db, shot_pk, worker="RenderWorker-0", node="gpu-1", device="cuda:0", by="driver")
    if log is not None:  # what the engine records when it starts capturing the attempt's output
        with db.write() as connection:
            connection.execute(update(Render).where(Render.c.id == render_id).values(log_path=str(log)))
    return render_id


@pytest.fixture
def logged(database_url: str, tmp_path: Path, make_job: Callable[..., int]) -> Iterator[Logged]:
    farm = make_farm(database_url, tmp_path / "data")
    db = farm.database(write=True)
    job_id = make_job(db)
    shots = {shot.shot_id: shot.pk for shot in shots_of_job(db, job_id)}
    first_log, second_log = tmp_path / "a-1.log", tmp_path / "a-2.log"
    first_log.write_text("loading previz\nTraceback (most recent call last):\nRenderError: no face found\n")
    first = attempt(db, shots["a"], first_log)
    finish_attempt(db, first, outcome=AttemptState.FAILED, shot_state=ShotState.QUEUED, by="driver",
                   error_class="RenderError", error_message="no face found")  # fmt: skip
    second_log.write_text("loading previz\n")
    second = attempt(db, shots["a"], second_log)
    attempt(db, shots["b"], None)
    yield Logged(farm, job_id, database_url, tmp_path / "data", first_log, second_log, second)
    farm.close()


def farm_command(*args: str, logged: Logged) -> list[str]:
    return [sys.executable, "-m", "farm", *args, "--db", logged.url]


def environment(logged: Logged) -> dict[str, str]:
    return {**os.environ, "FARM_DATA_DIR": str(logged.data_dir), "PYTHONPATH": str(REPO_ROOT)}


def test_logs_reads_each_attempts_file_and_says_when_there_is_none(logged: Logged) -> None:
    logs = logged.farm.logs(logged.job_id)

    assert [(log.shot_id, log.attempt_no, log.state) for log in logs] == [
        ("a", 1, "failed"),
        ("a", 2, "running"),
        ("b", 1, "running"),
    ]
    assert "RenderError: no face found" in logs[0].text and logs[0].missing is None
    assert logs[2].text == "" and "no log was recorded" in (logs[2].missing or "")
    logged.first_log.unlink()
    (gone,) = logged.farm.logs(logged.job_id, "a", 1)
    assert f"{logged.first_log} is missing" in (gone.missing or "")


def test_logs_picks_the_latest_attempt_and_an_unknown_one_says_what_exists(logged: Logged) -> None:
    (latest,) = logged.farm.logs(logged.job_id, "a", latest=True)

    assert (latest.attempt_no, latest.text) == (2, "loading previz\n")
    with pytest.raises(UnknownShot, match=r"shot a of job \d+ has had no attempt 5"):
        logged.farm.logs(logged.job_id, "a", 5)
    with pytest.raises(UnknownShot, match="has no shot zz"):
        logged.farm.logs(logged.job_id, "zz")


def test_reading_from_an_offset_returns_only_what_was_appended(tmp_path: Path) -> None:
    log = tmp_path / "attempt.log"
    cut = "ï".encode()
    log.write_bytes(b"first line\nna" + cut[:1])  # the worker has written half of a character so far

    start = read_log(log)
    with log.open("ab") as file:
        file.write(cut[1:] + b"ve second\n")
    more = read_log(log, offset=start.next_offset)

    assert (start.text, start.truncated) == ("first line\nna", False)
    assert more.text == "ïve second\n" and more.next_offset == log.stat().st_size


def test_a_long_log_shows_its_end_from_a_whole_line(tmp_path: Path) -> None:
    log = tmp_path / "attempt.log"
    log.write_text("".join(f"frame {number}\n" for number in range(1000)))

    tail = read_log(log, max_bytes=100)

    assert tail.truncated and tail.text.startswith("frame ") and tail.text.endswith("frame 999\n")
    assert tail.offset + len(tail.text.encode()) == log.stat().st_size


def test_farm_logs_prints_each_attempt_under_its_heading(logged: Logged) -> None:
    result = subprocess.run(
        farm_command("logs", str(logged.job_id), "--shot", "a", logged=logged),
        env=environment(logged),
        capture_output=True,
        text=True,
        timeout=120,
    )

    assert result.returncode == 0, result.stderr
    first, second = result.stdout.split("== shot a, attempt 2 (running)")
    assert first.startswith(f"== shot a, attempt 1 (failed)  {logged.first_log}")
    assert "RenderError: no face found" in first and "loading previz" in second


def test_farm_logs_follow_prints_what_the_attempt_appends_until_it_ends(logged: Logged) -> None:
    follower = subprocess.Popen(
        farm_command("logs", str(logged.job_id), "--shot", "a", "--follow", "--interval", "0.1", logged=logged),
        env=environment(logged),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    lines: queue.Queue[str] = queue.Queue()
    assert follower.stdout is not None
    output = follower.stdout
    reader = threading.Thread(target=lambda: [lines.put(line) for line in output], daemon=True)
    reader.start()
    try:
        seen = [lines.get(timeout=60), lines.get(timeout=60)]  # the heading, then the log so far
        with logged.second_log.open("a") as log:
            log.write("frame 10/59\n")
        seen.append(lines.get(timeout=60))
        db = logged.farm.database(write=True)
        finish_attempt(db, logged.second_render, outcome=AttemptState.SUCCEEDED, shot_state=ShotState.DONE,
                       by="driver")  # fmt: skip
        follower.wait(timeout=60)
        reader.join(10)
    finally:
        follower.kill()

    assert follower.returncode == 0, follower.stderr.read() if follower.stderr else ""
    assert seen[0].startswith("== shot a, attempt 2 (running)")
    assert seen[1:] == ["loading previz\n", "frame 10/59\n"]
    assert list(lines.queue) == ["== attempt 2 of shot a succeeded\n"]
