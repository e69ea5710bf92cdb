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
    assert "job 1 done: 7 done" in result.stdout
    edit_dir = data / "edits" / "job-1" / "v001"
    info = probe_video(edit_dir / "edit.mp4")
    assert (info.width, info.height, info.frames) == (480, 832, 386)
    assert (info.video_codec, info.pixel_format, info.audio_codec, info.audio_sample_rate) == (
        "h264", "yuv420p", "aac", 48_000,
    )  # fmt: skip
    timeline = otio.adapters.read_from_file(str(edit_dir / "edit.otio"))
    assert len(timeline.video_tracks()[0]) == 7
    assert timeline.duration().to_frames() == 386
    assert_both_faces_in_the_two_shot(edit_dir / "edit.mp4", first_frame=356)
    assert (edit_dir / "report.html").is_file()
    assert_every_face_in_frame(edit_dir / "edit.mp4", timeline)

    status = farm("status", "1", "--json", data_dir=data, cwd=demo)
    assert status.returncode == 0, status.stderr
    assert json.loads(status.stdout)["job"]["state"] == "done"

    broken = farm("render", "broken-continuity.yaml", data_dir=data, cwd=demo)

    assert broken.returncode == 1, broken.stdout + broken.stderr
    assert "continuity fail" in broken.stdout
    assert "identity" in broken.stdout and "audio_gap" in broken.stdout and "lip_sync" in broken.stdout
    broken_status = json.loads(farm("status", "2", "--json", data_dir=data, cwd=demo).stdout)
    lip_sync = {row["shot"]: row for row in broken_status["latest_edit"]["summary"]["lip_sync"]}
    assert set(lip_sync) == {"sc01_010", "sc01_020", "sc01_030", "sc02_010", "sc02_020", "sc02_030"}
    assert (lip_sync["sc02_030"]["lag_frames"], lip_sync["sc02_030"]["verdict"]) == (3, "fail")
    assert all(row["verdict"] == "pass" for shot, row in lip_sync.items() if shot != "sc02_030"), lip_sync
    assert "from cache" in broken.stdout  # shots shared with the first render are not rendered again


HEADROOM = 0.05
"""The face box (which starts at the brows) must begin at least this share of the frame below its top."""


def assert_every_face_in_frame(video: Path, timeline: otio.schema.Timeline) -> None:
    """The first, middle and last frame of every shot show a face wholly inside the frame, with headroom.

    The demo's walter_wide is an uncropped full-length photo on a crane move: before framing from the
    face, its forehead was above the top edge.
    """
    from farm.media.faces import detect_faces
    from farm.media.video import read_frames

    sampled: dict[int, str] = {}
    start = 0
    for number, clip in enumerate(timeline.video_tracks()[0]):
        length = clip.duration().to_frames()
        label = f"{number + 1} ({clip.name})"
        sampled.update({index: label for index in (start, start + length // 2, start + length - 1)})
        start += length
    checked = set()
    for index, frame in enumerate(read_frames(video)):
        if index not in sampled:
            continue
        height, width = frame.shape[:2]
        faces = detect_faces(frame)
        assert faces, f"shot {sampled[index]}, edit frame {index}: no face found"
        face = faces[0]
        where = f"shot {sampled[index]}, edit frame {index}: face {face.left},{face.top}-{face.right},{face.bottom}"
        assert face.left >= 0 and face.right <= width and face.bottom <= height, where
        assert face.top >= HEADROOM * height, where
        checked.add(sampled[index])
    assert len(checked) == len(timeline.video_tracks()[0])


def assert_both_faces_in_the_two_shot(edit: Path, first_frame: int) -> None:
    """The demo's last shot is a two-shot side by side: marcus's face in the left half, walter's in the right."""
    from farm.media.faces import SAME_PERSON_DISTANCE, identity_distance, image_identity, portrait_identity
    from farm.media.video import read_frames

    frame = next(frame for index, frame in enumerate(read_frames(edit)) if index == first_frame + 15)
    half = frame.shape[1] // 2
    for side, character in ((frame[:, :half], "marcus"), (frame[:, half:], "walter")):
        face = image_identity(side.copy())
        assert face is not None, f"no face in {character}'s half of the two-shot"
        reference = portrait_identity(REPO_ROOT / "shots" / "demo" / "media" / f"{character}.jpg")
        assert identity_distance(face, reference) < SAME_PERSON_DISTANCE, character


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
    submitted = farm("submit", "episode.yaml", "--json", "--driver", data_dir=data, cwd=demo)
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
            # its own agent port: a Ray elsewhere on this machine holding the default (52365) would leave
            # this head with no job agent ("No available agent to submit job")
            "dashboard_agent_listen_port": free_port(),
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
        assert f"job {reply['job']} done: 7 done" in client.get_job_logs(submission_id)
    finally:
        cluster.shutdown()


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_the_studio_path_farm_serve_and_submit_over_http_survives_a_kill_9(tmp_path: Path) -> None:
    """README's studio path: `farm serve` in one terminal, `farm submit FILE --server URL` from another, and
    the edit appears with nobody touching anything; kill -9 of the server mid-job and a restart finish the
    same job with no done shot rendered again."""
    import signal

    demo = tmp_path / "demo"
    shutil.copytree(REPO_ROOT / "shots" / "demo", demo)
    data = tmp_path / "data"
    url = f"http://127.0.0.1:{free_port()}"
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT), "FARM_DATA_DIR": str(data), "RAY_AUTH_MODE": "disabled"}
    command = [sys.executable, "-m", "farm", "serve", "--listen", url.removeprefix("http://")]

    def start(log: Path) -> subprocess.Popen[bytes]:
        with log.open("w") as out:
            return subprocess.Popen(command, cwd=demo, env=env, stdout=out, stderr=subprocess.STDOUT)

    def wait(condition: Callable[[], bool], what: str, log: Path, within: float = 300) -> None:
        deadline = time.monotonic() + within
        while not condition():
            assert time.monotonic() < deadline, f"{what}:\n{log.read_text()[-3000:]}"
            time.sleep(0.5)

    first_log, second_log = tmp_path / "serve-1.log", tmp_path / "serve-2.log"
    server = start(first_log)
    try:
        wait(lambda: "managing the farm" in first_log.read_text(), "the manager did not start", first_log)
        submitted = farm("submit", "episode.yaml", "--server", url, "--json", data_dir=data, cwd=demo)
        assert submitted.returncode == 0, submitted.stderr
        job = json.loads(submitted.stdout)["job"]

        def done_shots() -> list[dict]:
            status = json.loads(farm("status", str(job), "--json", data_dir=data, cwd=demo).stdout)
            return [shot for shot in status["shots"] if shot["state"] == "done"]

        wait(lambda: len(done_shots()) >= 2, "no shot was done", first_log)
        server.send_signal(signal.SIGKILL)
        server.wait(timeout=30)
        done_before = {shot["shot_id"]: shot["attempts"] for shot in done_shots()}
        server = start(second_log)
        edit = wait_for_the_edit(job, data, demo, log=lambda: second_log.read_text()[-3000:])
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=60)

    assert Path(edit["video_path"]).is_file()
    status = json.loads(farm("status", str(job), "--json", data_dir=data, cwd=demo).stdout)
    shots = {shot["shot_id"]: shot for shot in status["shots"]}
    assert all(shots[shot]["attempts"] == attempts for shot, attempts in done_before.items()), (done_before, shots)
    assert {shot["state"] for shot in shots.values()} == {"done"}
    assert "recovered" in second_log.read_text() or len(done_before) == len(shots)
