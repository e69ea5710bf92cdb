"""Shared storage: what farm writes honours the umask (the group reads it under 0022, nobody else under
0077), and a data directory moved after rendering still assembles from its cached shots, on SQLite and
PostgreSQL."""

from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import pytest
import sqlalchemy as sa

from farm.db.connect import create_sql_engine, normalise_url
from farm.settings import REPO_ROOT
from tests.shotlists import TEMPLATE, make_project, replace_once

pytestmark = pytest.mark.ray

SMALL = replace_once(
    replace_once(TEMPLATE, "width: 480\n  height: 832", "width: 96\n  height: 160"),
    "scenes:",
    "continuity:\n  checks:\n    lip_sync: {enabled: false}  # too small a picture to read lips from\nscenes:",
)


def farm(*args: str, data_dir: Path, cwd: Path, database_url: str | None, umask: int) -> str:
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT), "FARM_DATA_DIR": str(data_dir), "RAY_AUTH_MODE": "disabled"}
    env.pop("FARM_DATABASE_URL", None)
    if database_url is not None:
        env["FARM_DATABASE_URL"] = database_url
    result = subprocess.run(
        [sys.executable, "-m", "farm", *args],
        cwd=cwd, env=env, capture_output=True, text=True, timeout=600, umask=umask,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


def written(data_dir: Path) -> list[Path]:
    """Every file and folder under the data directory (all of them farm's, or SQLite's for it)."""
    return [data_dir, *sorted(data_dir.rglob("*"))]


def unreadable_to_others(paths: list[Path]) -> list[str]:
    """The paths the group or others cannot read (files) or enter and list (folders)."""
    readable = stat.S_IRGRP | stat.S_IROTH
    traversable = readable | stat.S_IXGRP | stat.S_IXOTH
    found = []
    for path in paths:
        wanted = traversable if path.is_dir() else readable
        if path.stat().st_mode & wanted != wanted:
            found.append(f"{path} {stat.filemode(path.stat().st_mode)}")
    return found


def test_under_umask_0077_nothing_farm_writes_is_open_to_the_group_or_others(tmp_path: Path) -> None:
    project = make_project(tmp_path / "show", SMALL)
    data = tmp_path / "data"

    farm("render", str(project), data_dir=data, cwd=tmp_path, database_url=None, umask=0o077)

    paths = written(data)
    assert any(path.suffix == ".mp4" for path in paths) and any(path.suffix == ".npz" for path in paths)
    opened = [f"{path} {stat.filemode(path.stat().st_mode)}" for path in paths if path.stat().st_mode & 0o077]
    assert opened == []


def test_a_render_under_umask_0022_is_readable_by_the_group_and_survives_its_data_dir_moving(
    tmp_path: Path, database_url: str, backend: str
) -> None:
    project = make_project(tmp_path / "show", SMALL)
    data = tmp_path / "data"
    url = None if backend == "sqlite" else database_url  # SQLite: the default file inside the data dir

    farm("render", str(project), data_dir=data, cwd=tmp_path, database_url=url, umask=0o022)

    paths = written(data)
    kinds = {path.name for path in paths} | {path.suffix for path in paths}
    assert {".mp4", ".npz", "edit.mp4", "edit.otio", "report.html", "report.json", "report_files", ".log"} <= kinds
    assert unreadable_to_others(paths) == []
    engine = create_sql_engine(normalise_url(database_url))
    with engine.connect() as connection:
        stored = connection.execute(sa.text("SELECT path FROM artifacts")).scalars().all()
    engine.dispose()
    assert stored and all(path.startswith("artifacts/") for path in stored)

    moved = tmp_path / "elsewhere" / "farm-data"
    moved.parent.mkdir()
    shutil.move(data, moved)
    url = None if backend == "sqlite" else database_url

    assembled = farm("assemble", "1", data_dir=moved, cwd=tmp_path, database_url=url, umask=0o022)
    assert "v002" in assembled or (moved / "edits" / "job-1" / "v002" / "edit.mp4").is_file(), assembled
    again = farm("render", str(project), data_dir=moved, cwd=tmp_path, database_url=url, umask=0o022)
    assert "cached" in again and "re-used edit" in again, again  # every shot and the edit from the moved store
    status = farm("status", "2", "--json", data_dir=moved, cwd=tmp_path, database_url=url, umask=0o022)
    assert str(moved) in status and str(data) not in status
    video = Path(json.loads(status)["latest_edit"]["video_path"])
    assert video.is_relative_to(moved) and video.is_file(), video
