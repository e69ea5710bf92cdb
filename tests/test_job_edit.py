"""The edit of a tracked job: shots' videos from the database, phases, versions recorded, retakes re-keyed."""

from __future__ import annotations

from pathlib import Path

import pytest

from farm.avatar.camera import render_camera_video
from farm.catalog import ModelCatalog
from farm.db.jobs import retry_job, transition_job
from farm.db.kinds import ArtifactKind
from farm.db.lease import heartbeat
from farm.db.products import ArtifactRecord
from farm.db.queries import find_artifact, job_detail, job_events, job_state, latest_edit, shots_of_job
from farm.db.session import Database
from farm.db.shots import finish_attempt, start_attempt
from farm.db.states import AttemptState, IllegalTransition, JobState, ShotState
from farm.digests import file_sha256
from farm.edit.retakes import Retake, RetakeMode
from farm.engine.artifacts import ArtifactStore
from farm.errors import MediaError, UsageError
from farm.jobs.edit import assemble_job, edit_shots, job_edits_dir
from farm.jobs.retake import apply_retakes, escalations_of
from farm.jobs.run import render_job
from farm.jobs.submit import submit_shot_list
from farm.media.audio import cut_audio
from farm.media.image import load_rgb
from farm.media.video import ShotVideoWriter
from farm.plan import ShotTask
from farm.settings import REPO_ROOT, Settings, resolve_settings
from farm.verdicts import Verdict
from tests.shotlists import TEMPLATE, make_project, replace_once

SMALL = replace_once(
    replace_once(TEMPLATE, "width: 480\n  height: 832", "width: 96\n  height: 160"),
    "scenes:",
    "continuity:\n  checks:\n    lip_sync: {enabled: false}  # the stand-in renders below do not talk\nscenes:",
)


def settings_for(tmp_path: Path, database_url: str) -> Settings:
    return resolve_settings(data_dir=tmp_path / "data", database_url=database_url, models_dir=REPO_ROOT / "models")


def render_without_ray(db: Database, settings: Settings, job_id: int, only: set[str] | None = None) -> None:
    """Stand in for the engine: write each queued shot's video (portrait + camera move) and record it.

    As a driver does, it moves the job into its rendering phase first; the database moves it on to
    assembling when the last shot is done.
    """
    state = job_state(db, job_id)
    if state in (JobState.QUEUED, JobState.RETAKING):
        transition_job(db, job_id, JobState.RENDERING, by="test", expected={state})
    store = ArtifactStore(settings.artifacts_dir)
    for row in shots_of_job(db, job_id):
        if row.state is not ShotState.QUEUED or (only is not None and row.shot_id not in only):
            continue
        task = ShotTask.from_json(row.spec)
        path = store.path_for(task.cache_key, ArtifactKind.SHOT_VIDEO)
        frames = render_camera_video(load_rgb(task.reference_image), task.camera, task.frames, task.width, task.height)
        audio = cut_audio(task.audio.path, task.audio.sample_range)
        render_id = start_attempt(db, row.pk, worker="test", node="local", device="cpu", by="test")
        with ShotVideoWriter(path, width=task.width, height=task.height, fps=task.fps, frames=task.frames,
                             audio=audio) as sink:  # fmt: skip
            for frame in frames:
                sink.write(frame)
        video = ArtifactRecord(
            task.cache_key, ArtifactKind.SHOT_VIDEO, str(path), path.stat().st_size, file_sha256(path), task.frames,
            float(task.duration),
        )  # fmt: skip
        finish_attempt(
            db, render_id, outcome=AttemptState.SUCCEEDED, shot_state=ShotState.DONE, by="test", artifacts=[video]
        )


def rendered_job(database: Database, database_url: str, tmp_path: Path) -> tuple[Settings, int]:
    settings = settings_for(tmp_path, database_url)
    job = submit_shot_list(database, settings, make_project(tmp_path / "p", SMALL)).job_id
    render_without_ray(database, settings, job)
    return settings, job


def test_a_job_whose_shots_are_rendered_is_assembling_not_done(
    database: Database, database_url: str, tmp_path: Path
) -> None:
    _, job = rendered_job(database, database_url, tmp_path)

    assert job_state(database, job) is JobState.ASSEMBLING
    assert latest_edit(database, job) is None
    last = job_events(database, job)[-1]
    assert (last.old_state, last.new_state, last.message) == ("rendering", "assembling", "every shot is rendered")


def test_each_assembly_is_a_new_recorded_version_and_done_means_the_edit_exists(
    database: Database, database_url: str, tmp_path: Path
) -> None:
    settings, job = rendered_job(database, database_url, tmp_path)

    first = assemble_job(database, settings, job, by="editor")
    assert job_state(database, job) is JobState.DONE
    second = assemble_job(database, settings, job, by="editor")

    assert (first.version, second.version) == (1, 2)
    assert first.outcome.assembly.path == job_edits_dir(settings, job) / "v001" / "edit.mp4"
    assert first.outcome.assembly.path.is_file() and second.outcome.assembly.path.is_file()
    assert first.outcome.assembly.frames == 59 + 55 + 78
    assert first.verdict in {Verdict.PASS, Verdict.WARN}
    assert first.outcome.timeline.otio.is_file() and first.outcome.report.html.is_file()
    phases = [(e.old_state, e.new_state) for e in job_events(database, job) if e.kind == "job.state"]
    assert phases[-3:] == [("done", "assembling"), ("assembling", "checking"), ("checking", "done")]
    assert job_state(database, job) is JobState.DONE


def test_an_unfinished_job_is_refused_and_leaves_no_version(
    database: Database, database_url: str, tmp_path: Path
) -> None:
    settings = settings_for(tmp_path, database_url)
    job = submit_shot_list(database, settings, make_project(tmp_path / "p", SMALL)).job_id
    render_without_ray(database, settings, job, only={"a"})

    with pytest.raises(UsageError, match=r"shots that are not done \(b, c\)"):
        assemble_job(database, settings, job, by="editor")
    assert not (job_edits_dir(settings, job) / "v001").exists()
    assert job_state(database, job) is JobState.RENDERING


def test_a_failed_first_assembly_leaves_no_folder_and_no_row_and_fails_the_job(
    database: Database, database_url: str, tmp_path: Path
) -> None:
    settings, job = rendered_job(database, database_url, tmp_path)
    break_video(database, job, "b")

    with pytest.raises(MediaError):
        assemble_job(database, settings, job, by="editor")
    assert not (job_edits_dir(settings, job) / "v001").exists()
    assert latest_edit(database, job) is None
    assert job_state(database, job) is JobState.FAILED
    assert job_events(database, job)[-1].message.startswith("its edit failed: ")


def test_a_failed_reassembly_leaves_the_earlier_edit_standing(
    database: Database, database_url: str, tmp_path: Path
) -> None:
    settings, job = rendered_job(database, database_url, tmp_path)
    assemble_job(database, settings, job, by="editor")
    break_video(database, job, "b")

    with pytest.raises(MediaError):
        assemble_job(database, settings, job, by="editor")
    assert not (job_edits_dir(settings, job) / "v002").exists()
    assert latest_edit(database, job).version == 1
    assert job_state(database, job) is JobState.DONE


def break_video(database: Database, job: int, shot_id: str) -> None:
    row = next(row for row in shots_of_job(database, job) if row.shot_id == shot_id)
    Path(find_artifact(database, row.cache_key, ArtifactKind.SHOT_VIDEO).path).write_bytes(b"not a video any more")


def test_a_driver_that_died_while_checking_leaves_a_job_the_next_one_assembles(
    database: Database, database_url: str, tmp_path: Path
) -> None:
    settings, job = rendered_job(database, database_url, tmp_path)
    transition_job(database, job, JobState.CHECKING, by="driver-that-died")

    rendered = render_job(database, settings, job)  # no shot left to render, so no Ray either

    assert rendered.drives == () and [edit.version for edit in rendered.edits] == [1]
    assert rendered.outcome.state is JobState.DONE
    assert latest_edit(database, job).version == 1


def test_a_retake_rekeys_the_shot_and_queues_it_with_its_reason(
    database: Database, database_url: str, tmp_path: Path
) -> None:
    settings, job = rendered_job(database, database_url, tmp_path)
    for phase in (JobState.CHECKING, JobState.RETAKING):  # what a check with policy retake leads to
        transition_job(database, job, phase, by="driver")
    before = {row.shot_id: row for row in shots_of_job(database, job)}

    retake = Retake(
        "a", attempt=1, seed=1234, mode=RetakeMode.NEW_SEED, continues=None, checks=("identity",), reason="why a"
    )
    queued = apply_retakes(database, settings, job, (retake,), by="driver")

    after = {row.shot_id: row for row in shots_of_job(database, job)}
    assert queued == ["a"]  # c continues a, but previz does not read the continuation: c keeps its key
    assert after["a"].cache_key != before["a"].cache_key and after["a"].spec["seed"] == 1234
    assert after["c"].cache_key == before["c"].cache_key and after["c"].state is ShotState.DONE
    assert after["a"].state is ShotState.QUEUED and job_state(database, job) is JobState.RETAKING
    status = {shot.shot_id: shot for shot in job_detail(database, job).shots}
    assert status["a"].retake_reason == "why a" and status["a"].to_json()["retake_reason"] == "why a"
    assert status["b"].retake_reason is None
    assert any(e.message == "retake: why a" and e.data["reason"] == "why a" for e in job_events(database, job))

    render_without_ray(database, settings, job)
    assert job_state(database, job) is JobState.ASSEMBLING
    edit = assemble_job(database, settings, job, by="driver")
    assert edit.version == 1 and job_state(database, job) is JobState.DONE


FINAL = replace_once(SMALL, "quality: preview", "quality: final\n  model: tiny-avatar")


def test_at_final_a_retake_rekeys_its_continuation_and_a_climb_or_a_reference_render_changes_the_recipe(
    database: Database, database_url: str, tmp_path: Path
) -> None:
    settings = settings_for(tmp_path, database_url)
    weights = settings.weights_dir / "tiny-avatar"  # planning hashes the folder; nothing here loads it
    weights.mkdir(parents=True)
    (weights / "model_index.json").write_text("{}")
    job = submit_shot_list(database, settings, make_project(tmp_path / "p", FINAL)).job_id
    render_without_ray(database, settings, job)
    for phase in (JobState.CHECKING, JobState.RETAKING):
        transition_job(database, job, phase, by="driver")
    before = {row.shot_id: row for row in shots_of_job(database, job)}
    tasks = [ShotTask.from_json(row.spec) for row in before.values()]
    assert {
        shot: [e.name for e in rungs]
        for shot, rungs in escalations_of(tasks, ModelCatalog.for_settings(settings)).items()
    } == {shot: ["more steps (steps 2 -> 4)"] for shot in "abc"}

    climb = Retake("a", 3, 7, RetakeMode.ESCALATE, None, ("identity",), "climb", escalation=1)
    from_reference = Retake("c", 1, 7, RetakeMode.FROM_REFERENCE, "a", ("colour",), "ref", from_reference=True)
    queued = apply_retakes(database, settings, job, (climb, from_reference), by="driver")

    after = {row.shot_id: row for row in shots_of_job(database, job)}
    assert queued == ["a", "c"]
    assert (after["a"].spec["steps"], after["a"].spec["escalation"]) == (4, 1)
    assert after["c"].spec["from_reference"] is True and after["c"].spec["depends_on"] == []
    assert after["c"].spec["continues"] == "a" and after["c"].spec["seed"] == before["c"].spec["seed"]
    assert {shot: after[shot].cache_key != before[shot].cache_key for shot in "abc"} == {
        "a": True,
        "b": False,
        "c": True,
    }
    status = {shot.shot_id: shot.retake_reason for shot in job_detail(database, job).shots}
    assert status == {"a": "climb", "b": None, "c": "ref"}


def test_edit_shots_come_from_the_plan_in_edit_order_and_need_every_video(tmp_path: Path) -> None:
    from farm.plan import plan_shot_list
    from farm.shotlist.load import load_shot_list
    from tests.edit_shots import CATALOG
    from tests.shotlists import REPO

    shot_list = load_shot_list(REPO / "shots" / "demo" / "broken-continuity.yaml", catalog=CATALOG)
    plan = plan_shot_list(shot_list, CATALOG)
    videos = {task.shot_id: tmp_path / f"{task.shot_id}.mp4" for task in plan.tasks}
    persons = {cid: character.person_id for cid, character in shot_list.characters.items()}

    shots = edit_shots(plan.tasks, videos, persons=persons)

    assert [shot.shot_id for shot in shots] == [task.shot_id for task in plan.tasks]
    assert {shot.shot_id: shot.person for shot in shots}["sc02_020"] == "marcus"
    assert shots[0].cache_key == plan.tasks[0].cache_key and shots[0].frames == plan.tasks[0].frames
    del videos["sc01_020"]
    with pytest.raises(UsageError, match="sc01_020"):
        edit_shots(plan.tasks, videos)


def test_a_missing_video_refuses_the_edit_and_a_retry_of_that_shot_queues_the_job_again(
    database: Database, database_url: str, tmp_path: Path
) -> None:
    settings, job = rendered_job(database, database_url, tmp_path)
    row = next(row for row in shots_of_job(database, job) if row.shot_id == "b")
    Path(find_artifact(database, row.cache_key, ArtifactKind.SHOT_VIDEO).path).unlink()

    with pytest.raises(UsageError, match=f"farm retry {job} --shot b"):
        assemble_job(database, settings, job, by="editor")
    assert job_state(database, job) is JobState.ASSEMBLING  # refused before anything changed

    assert retry_job(database, job, by="editor", shot_ids=["b"]) == 1
    assert job_state(database, job) is JobState.QUEUED


def test_a_live_driver_making_the_edit_keeps_its_shots(database: Database, database_url: str, tmp_path: Path) -> None:
    _, job = rendered_job(database, database_url, tmp_path)
    heartbeat(database, job, "driver@render01-1")

    with pytest.raises(IllegalTransition, match="is assembling its edit; wait for it"):
        retry_job(database, job, by="editor", shot_ids=["b"])
    assert job_state(database, job) is JobState.ASSEMBLING
