"""The edit of a tracked job: shots' videos from the database, versions recorded, retakes re-keyed."""

from __future__ import annotations

from pathlib import Path

import pytest

from farm.avatar.camera import render_camera_video
from farm.db import transitions
from farm.db.queries import job_state, shots_of_job
from farm.db.session import Database
from farm.db.states import AttemptState, JobState, ShotState
from farm.digests import file_sha256
from farm.edit.job_edit import apply_retakes, assemble_job, job_edits_dir
from farm.edit.retakes import Retake, RetakeMode
from farm.engine.artifacts import SHOT_VIDEO, ArtifactStore
from farm.engine.runner import submit_shot_list
from farm.errors import UsageError
from farm.media.audio import cut_audio
from farm.media.image import load_rgb
from farm.media.video import ShotVideoWriter
from farm.plan import ShotTask
from farm.settings import REPO_ROOT, Settings, resolve_settings
from tests.shotlists import TEMPLATE, make_project, replace_once

SMALL = replace_once(TEMPLATE, "width: 480\n  height: 832", "width: 96\n  height: 160")


def settings_for(tmp_path: Path, database_url: str) -> Settings:
    return resolve_settings(data_dir=tmp_path / "data", database_url=database_url, models_dir=REPO_ROOT / "models")


def render_without_ray(db: Database, settings: Settings, job_id: int, only: set[str] | None = None) -> None:
    """Stand in for the engine: write each queued shot's video (portrait + camera move) and record it."""
    store = ArtifactStore(settings.artifacts_dir)
    for row in shots_of_job(db, job_id):
        if row.state is not ShotState.QUEUED or (only is not None and row.shot_id not in only):
            continue
        task = ShotTask.from_json(row.spec)
        path = store.path_for(task.cache_key, SHOT_VIDEO)
        frames = render_camera_video(load_rgb(task.reference_image), task.camera, task.frames, task.width, task.height)
        audio = cut_audio(task.audio.path, task.audio.sample_range)
        render_id = transitions.start_attempt(db, row.pk, worker="test", node="local", device="cpu", actor="test")
        with ShotVideoWriter(path, width=task.width, height=task.height, fps=task.fps, frames=task.frames,
                             audio=audio) as sink:  # fmt: skip
            for frame in frames:
                sink.write(frame)
        artifact = transitions.record_artifact(
            db, cache_key=task.cache_key, kind=SHOT_VIDEO, path=str(path), bytes=path.stat().st_size,
            sha256=file_sha256(path), frames=task.frames, duration=float(task.duration),
        )  # fmt: skip
        transitions.finish_attempt(
            db, render_id, outcome=AttemptState.SUCCEEDED, shot_state=ShotState.DONE, actor="test",
            artifact_id=artifact,
        )  # fmt: skip
    if all(row.state is ShotState.DONE for row in shots_of_job(db, job_id)):
        transitions.transition_job(db, job_id, JobState.RUNNING, actor="test", expected={JobState.QUEUED})
        transitions.transition_job(db, job_id, JobState.DONE, actor="test")


def test_each_assembly_is_a_new_recorded_version(database: Database, database_url: str, tmp_path: Path) -> None:
    settings = settings_for(tmp_path, database_url)
    job = submit_shot_list(database, settings, make_project(tmp_path / "p", SMALL)).job_id
    render_without_ray(database, settings, job)

    first = assemble_job(database, settings, job)
    second = assemble_job(database, settings, job)

    assert (first.version, second.version) == (1, 2)
    assert first.outcome.assembly.path == job_edits_dir(settings, job) / "v001" / "edit.mp4"
    assert first.outcome.assembly.path.is_file() and second.outcome.assembly.path.is_file()
    assert first.outcome.assembly.frames == 59 + 55 + 78
    assert first.verdict in {"pass", "warn"}
    assert first.outcome.timeline.otio.is_file() and first.outcome.report.html.is_file()


def test_an_unfinished_job_is_refused_and_leaves_no_version(
    database: Database, database_url: str, tmp_path: Path
) -> None:
    settings = settings_for(tmp_path, database_url)
    job = submit_shot_list(database, settings, make_project(tmp_path / "p", SMALL)).job_id
    render_without_ray(database, settings, job, only={"a"})

    with pytest.raises(UsageError, match=r"shots that are not done \(b, c\)"):
        assemble_job(database, settings, job)
    assert not (job_edits_dir(settings, job) / "v001").exists()


def test_a_failed_assembly_leaves_no_folder_and_no_row(database: Database, database_url: str, tmp_path: Path) -> None:
    settings = settings_for(tmp_path, database_url)
    job = submit_shot_list(database, settings, make_project(tmp_path / "p", SMALL)).job_id
    render_without_ray(database, settings, job)
    video = Path(transitions.find_artifact(database, shots_of_job(database, job)[1].cache_key, SHOT_VIDEO).path)
    video.write_bytes(b"not a video any more")

    with pytest.raises(Exception):  # noqa: B017 - whichever layer notices the broken file
        assemble_job(database, settings, job)
    assert not (job_edits_dir(settings, job) / "v001").exists()
    assert assemble_job_versions(database, job) == []


def assemble_job_versions(db: Database, job_id: int) -> list[int]:
    from sqlalchemy import select

    from farm.db.models import Edit

    with db.session() as session:
        return list(session.scalars(select(Edit.version).where(Edit.job_id == job_id)))


def test_a_retake_rekeys_the_shot_and_its_continuation_and_queues_them(
    database: Database, database_url: str, tmp_path: Path
) -> None:
    settings = settings_for(tmp_path, database_url)
    job = submit_shot_list(database, settings, make_project(tmp_path / "p", SMALL)).job_id
    render_without_ray(database, settings, job)
    before = {row.shot_id: row for row in shots_of_job(database, job)}

    retake = Retake("a", attempt=1, seed=1234, mode=RetakeMode.NEW_SEED, continues=None, checks=("identity",))
    queued = apply_retakes(database, settings, job, (retake,))

    after = {row.shot_id: row for row in shots_of_job(database, job)}
    assert queued == ["a", "c"]  # c continues a, so its key changes too
    assert after["a"].cache_key != before["a"].cache_key and after["a"].spec["seed"] == 1234
    assert after["c"].cache_key != before["c"].cache_key and after["c"].spec["seed"] == before["c"].spec["seed"]
    assert after["b"].cache_key == before["b"].cache_key and after["b"].state is ShotState.DONE
    assert {after[s].state for s in "ac"} == {ShotState.QUEUED}
    assert job_state(database, job) is JobState.QUEUED

    render_without_ray(database, settings, job)
    edit = assemble_job(database, settings, job)
    assert edit.version == 1 and job_state(database, job) is JobState.DONE
