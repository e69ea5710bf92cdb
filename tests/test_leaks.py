"""No leaks: a refused shot list creates nothing, crash logs go to the data dir given, and a killed
``farm render`` leaves no Ray process behind once farm starts again on the machine."""

from __future__ import annotations

import contextlib
import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from farm.cli import _write_crash_log
from farm.cli.options import settings_from
from farm.engine import ray_owners
from farm.engine.cluster import ray_temp_dir
from farm.settings import REPO_ROOT
from tests.shotlists import TEMPLATE, make_project, replace_once
from tests.waiting import wait_for

SMALL = replace_once(TEMPLATE, "width: 480\n  height: 832", "width: 96\n  height: 160")


def farm_command(*args: str, data_dir: Path) -> list[str]:
    return [sys.executable, "-m", "farm", *args, "--data-dir", str(data_dir)]


def farm_env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(REPO_ROOT), "RAY_AUTH_MODE": "disabled"}


def test_render_of_an_invalid_shot_list_creates_no_data_dir_or_database(tmp_path: Path) -> None:
    shot_list = make_project(tmp_path / "p", replace_once(SMALL, "fps: 25", "fps: -3"))
    data_dir = tmp_path / "data"

    started = time.monotonic()
    refused = subprocess.run(
        farm_command("render", str(shot_list), data_dir=data_dir),
        env=farm_env(),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    seconds = time.monotonic() - started

    assert refused.returncode == 2, refused.stderr
    assert "ep.yaml:5:8: output.fps: -3 is not above the minimum 0" in refused.stderr
    assert "Traceback" not in refused.stderr
    assert not data_dir.exists()
    print(f"farm render of an invalid list refused in {seconds:.1f} s")


def test_render_refuses_before_the_database_layer_or_ray_is_imported(tmp_path: Path) -> None:
    shot_list = make_project(tmp_path / "p", replace_once(SMALL, "fps: 25", "fps: -3"))
    probe = (
        "import sys\n"
        "from farm.cli import cli\n"
        "try:\n"
        f"    cli.main(['render', {str(shot_list)!r}, '--data-dir', {str(tmp_path / 'data')!r}], prog_name='farm')\n"
        "except SystemExit as exc:\n"
        "    print('exit', exc.code)\n"
        "print('loaded', sorted(name for name in ('sqlalchemy', 'ray', 'scipy', 'torch') if name in sys.modules))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe], env=farm_env(), capture_output=True, text=True, timeout=120, check=False
    )

    assert "exit 2" in result.stdout, result.stderr
    assert "loaded []" in result.stdout


def test_a_crash_log_goes_to_the_data_dir_the_command_was_given(tmp_path: Path) -> None:
    settings_from(data_dir=tmp_path / "given")

    log = _write_crash_log(RuntimeError("something nobody expected"))

    assert log.parent == tmp_path / "given" / "logs"
    assert "something nobody expected" in log.read_text()


@pytest.fixture
def stop_afterwards() -> Iterator[list[int]]:
    """Pids to stop at the end whatever happens (a failing test must not leave Ray running either)."""
    pids: list[int] = []
    yield pids
    ray_owners.stop_processes(pids, grace_seconds=2.0)


def command_of(pid: int) -> bytes:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return b""


def attempts_started(data_dir: Path) -> int:
    """Attempts in the render's SQLite database, read-only (0 while it does not exist yet)."""
    try:
        with contextlib.closing(sqlite3.connect(f"file:{data_dir / 'farm.db'}?mode=ro", uri=True)) as connection:
            return int(connection.execute("SELECT count(*) FROM renders").fetchone()[0])
    except sqlite3.Error:
        return 0


def owner_record(pid: int) -> ray_owners.RayOwner | None:
    for _, owner in ray_owners.read_owners(ray_temp_dir()):
        if owner.pid == pid:
            return owner
    return None


@pytest.mark.skipif(not ray_owners.supported(), reason="finding processes by session needs /proc")
def test_a_killed_render_leaves_no_ray_process_once_farm_starts_again(
    tmp_path: Path, stop_afterwards: list[int]
) -> None:
    shot_list = make_project(tmp_path / "p", SMALL)
    data_dir = tmp_path / "data"
    log = (tmp_path / "first.log").open("wb")
    first = subprocess.Popen(
        farm_command("render", str(shot_list), data_dir=data_dir), env=farm_env(), stdout=log, stderr=log
    )
    stop_afterwards.append(first.pid)
    owner = wait_for(lambda: owner_record(first.pid), seconds=300, what="the render's local Ray to start")
    assert isinstance(owner, ray_owners.RayOwner) and owner.node_id

    def processes() -> list[int]:
        return ray_owners.session_processes(owner.session_dir, owner.node_id)

    def rendering() -> bool:  # an attempt started while the session's Ray processes run: the render is under way
        # Ray's agents (about 200 MB) are what a dead render used to leave; they may start after the first
        # attempt on a quick render, so the kill may come before them: whatever the session runs must go.
        return attempts_started(data_dir) > 0 and bool(processes())

    wait_for(rendering, seconds=300, what="the job's first attempt")

    first.send_signal(signal.SIGKILL)
    first.wait(timeout=30)
    left = {pid: ray_owners.process_start_time(pid) for pid in processes()}
    stop_afterwards.extend(left)
    print(f"the killed render left {len(left)} Ray process(es) of {owner.session_dir}")

    again = subprocess.run(
        farm_command("render", "--resume", "1", data_dir=data_dir),
        env=farm_env(),
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )

    assert again.returncode == 0, again.stdout + again.stderr
    still = [pid for pid, start in left.items() if start is not None and ray_owners.process_start_time(pid) == start]
    assert still == [], f"Ray processes of the killed render's session still running: {still}"
    assert owner_record(first.pid) is None
    assert processes() == []
