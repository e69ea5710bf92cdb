"""The quick start's main job, as a user runs it: the demo renders on local Ray to a checked edit."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Callable
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


def wait_for_the_edit(job: int, data: Path, cwd: Path, log: Callable[[], str]) -> dict:
    """Poll `farm status JOB --json` until the job ends and, if it is done, its edit exists; the edit.

    A job is done when its shots are; the driver then assembles the edit, which status shows as latest_edit.
    """
    deadline = time.monotonic() + 300
    state, edit = "queued", None
    while time.monotonic() < deadline and not (state in {"failed", "cancelled"} or (state == "done" and edit)):
        time.sleep(2)
        status = json.loads(farm("status", str(job), "--json", data_dir=data, cwd=cwd).stdout)
        state, edit = status["job"]["state"], status["latest_edit"]
    assert state == "done" and edit is not None, log()
    assert edit["version"] == 1
    assert Path(edit["video_path"]) == data / "edits" / f"job-{job}" / "v001" / "edit.mp4"
    assert Path(edit["video_path"]).is_file()
    return edit


def test_submit_returns_at_once_and_the_detached_driver_finishes_the_job(tmp_path: Path) -> None:
    demo = tmp_path / "demo"
    shutil.copytree(REPO_ROOT / "shots" / "demo", demo)
    data = tmp_path / "data"

    started = time.monotonic()
    submitted = farm("submit", "episode.yaml", "--json", data_dir=data, cwd=demo)
    returned_after = time.monotonic() - started

    assert submitted.returncode == 0, submitted.stderr
    job = json.loads(submitted.stdout)["job"]
    assert returned_after < 30  # planning only; the render happens in the detached driver
    wait_for_the_edit(job, data, demo, log=lambda: (data / "logs" / f"job-{job}.log").read_text()[-2000:])


def test_submit_with_a_dashboard_runs_the_driver_as_a_ray_job_on_the_cluster(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`farm submit --dashboard` hands the driver to the cluster's job manager: it runs `python -m farm render
    --resume JOB` on the head, where `python` is the head's own (here: this interpreter, first on PATH)."""
    from ray.cluster_utils import Cluster
    from ray.job_submission import JobSubmissionClient

    demo = tmp_path / "demo"
    shutil.copytree(REPO_ROOT / "shots" / "demo", demo)
    data = tmp_path / "data"
    monkeypatch.setenv("PATH", f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setenv("PYTHONPATH", str(REPO_ROOT))
    dashboard_port = free_port()
    cluster = Cluster(
        initialize_head=True,
        head_node_args={
            "num_cpus": 2,
            "include_dashboard": True,
            "dashboard_host": "127.0.0.1",
            "dashboard_port": dashboard_port,
        },
    )
    dashboard = f"http://127.0.0.1:{dashboard_port}"
    try:
        submitted = farm(
            "submit", "episode.yaml", "--json", "--dashboard", dashboard, "--address", cluster.address,
            data_dir=data, cwd=demo,
        )  # fmt: skip
        assert submitted.returncode == 0, submitted.stderr
        reply = json.loads(submitted.stdout)
        assert reply["driver"].startswith("Ray job farm-job-")
        submission_id = reply["driver"].removeprefix("Ray job ")
        client = JobSubmissionClient(dashboard)

        wait_for_the_edit(reply["job"], data, demo, log=lambda: client.get_job_logs(submission_id)[-2000:])
        assert f"job {reply['job']} done: 6 done" in client.get_job_logs(submission_id)
    finally:
        cluster.shutdown()


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]
