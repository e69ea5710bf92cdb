"""The quick start's main job, as a user runs it: the demo renders on local Ray to a checked edit."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import opentimelineio as otio
import pytest

from farm.media.video import probe_video
from farm.settings import REPO_ROOT

pytestmark = pytest.mark.ray


def farm(*args: str, data_dir: Path, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT), "FARM_DATA_DIR": str(data_dir), "RAY_AUTH_MODE": "disabled"}
    return subprocess.run(
        [sys.executable, "-m", "farm", *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=600
    )


def test_demo_renders_to_an_edit_and_the_broken_variant_is_flagged(tmp_path: Path) -> None:
    demo = tmp_path / "demo"
    shutil.copytree(REPO_ROOT / "shots" / "demo", demo)
    data = tmp_path / "data"

    result = farm("render", "episode.yaml", data_dir=data, cwd=demo)

    assert result.returncode == 0, result.stdout + result.stderr
    assert "job 1 done: 6 done" in result.stdout
    edit_dir = data / "edits" / "job-1" / "v001"
    info = probe_video(edit_dir / "edit.mp4")
    assert (info.width, info.height, info.frames) == (480, 832, 356)
    assert (info.video_codec, info.pixel_format, info.audio_codec, info.audio_sample_rate) == (
        "h264", "yuv420p", "aac", 48_000,
    )  # fmt: skip
    timeline = otio.adapters.read_from_file(str(edit_dir / "edit.otio"))
    assert len(timeline.video_tracks()[0]) == 6
    assert timeline.duration().to_frames() == 356
    assert (edit_dir / "report.html").is_file()

    status = farm("status", "1", "--json", data_dir=data, cwd=demo)
    assert status.returncode == 0, status.stderr
    assert json.loads(status.stdout)["job"]["state"] == "done"

    broken = farm("render", "broken-continuity.yaml", data_dir=data, cwd=demo)

    assert broken.returncode == 1, broken.stdout + broken.stderr
    assert "continuity fail" in broken.stdout
    assert "identity" in broken.stdout and "audio_gap" in broken.stdout
    assert "from cache" in broken.stdout  # shots shared with the first render are not rendered again


def test_submit_returns_at_once_and_the_detached_driver_finishes_the_job(tmp_path: Path) -> None:
    import time

    demo = tmp_path / "demo"
    shutil.copytree(REPO_ROOT / "shots" / "demo", demo)
    data = tmp_path / "data"

    started = time.monotonic()
    submitted = farm("submit", "episode.yaml", "--json", data_dir=data, cwd=demo)
    returned_after = time.monotonic() - started

    assert submitted.returncode == 0, submitted.stderr
    job = json.loads(submitted.stdout)["job"]
    assert returned_after < 30  # planning only; the render happens in the detached driver
    # A job is done when its shots are; the driver then assembles the edit, which status shows as latest_edit.
    deadline = time.monotonic() + 300
    state, edit = "queued", None
    while time.monotonic() < deadline and not (state in {"failed", "cancelled"} or (state == "done" and edit)):
        time.sleep(2)
        status = json.loads(farm("status", str(job), "--json", data_dir=data, cwd=demo).stdout)
        state, edit = status["job"]["state"], status["latest_edit"]
    assert state == "done", (data / "logs" / f"job-{job}.log").read_text()[-2000:]
    assert edit is not None and edit["version"] == 1, (data / "logs" / f"job-{job}.log").read_text()[-2000:]
    assert Path(edit["video_path"]) == data / "edits" / f"job-{job}" / "v001" / "edit.mp4"
    assert Path(edit["video_path"]).is_file()
