"""Re-runs that cost nothing: a job whose shots are all cached starts no Ray and re-uses the edit already
made when its content key matches; a changed edit input makes a new edit without rendering a shot."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import ray

from farm.catalog import ModelCatalog
from farm.db.queries import latest_edit, shots_of_job
from farm.db.session import Database
from farm.db.states import JobState
from farm.defaults import LOUDNESS_LUFS, TRUE_PEAK_DB
from farm.edit.content_key import edit_content_key
from farm.jobs.edit import edit_shots, finished_tasks, video_of
from farm.jobs.estimate import MANIFEST, MEASURED, plan_cost
from farm.jobs.run import render_job
from farm.jobs.submit import submit_shot_list
from farm.shotlist.types import ContinuityConfig, OutputSpec
from tests.shotlists import make_project
from tests.test_job_edit import SMALL, render_without_ray, rendered_job, settings_for


def test_a_cached_rerun_starts_no_ray_and_reuses_the_edit(
    database: Database, database_url: str, tmp_path: Path
) -> None:
    assert not ray.is_initialized()
    settings, first_job = rendered_job(database, database_url, tmp_path)
    first = render_job(database, settings, first_job).edit
    assert first is not None and first.reused is None and first.outcome is not None

    again = submit_shot_list(database, settings, make_project(tmp_path / "p", SMALL)).job_id
    rendered = render_job(database, settings, again)

    assert not ray.is_initialized(), "a render with nothing to render connected to Ray"
    assert rendered.outcome.state is JobState.DONE
    assert rendered.outcome.rendered == 0 and rendered.outcome.cached == len(shots_of_job(database, again))
    edit = rendered.edit
    assert edit is not None and edit.outcome is None
    assert edit.reused is not None and edit.reused.id == first.edit_id
    assert edit.files.video == first.files.video and edit.content_key == first.content_key
    recorded = latest_edit(database, again)
    assert recorded is not None and recorded.reused_from_id == first.edit_id
    assert recorded.video_path == str(first.files.video) and recorded.verdict is first.verdict


def test_a_new_loudness_target_makes_a_new_edit_without_rendering_a_shot(
    database: Database, database_url: str, tmp_path: Path
) -> None:
    settings, first_job = rendered_job(database, database_url, tmp_path)
    first = render_job(database, settings, first_job).edit
    assert first is not None

    again = submit_shot_list(database, settings, make_project(tmp_path / "p", SMALL)).job_id
    rendered = render_job(database, settings, again, loudness_lufs=LOUDNESS_LUFS - 4)

    assert rendered.outcome.rendered == 0 and not ray.is_initialized()
    edit = rendered.edit
    assert edit is not None and edit.reused is None and edit.outcome is not None
    assert edit.files.video != first.files.video and edit.files.video.is_file()
    assert edit.content_key != first.content_key
    assert edit.outcome.assembly.target_lufs == LOUDNESS_LUFS - 4


def test_an_edit_whose_files_are_gone_is_not_reused(database: Database, database_url: str, tmp_path: Path) -> None:
    settings, first_job = rendered_job(database, database_url, tmp_path)
    first = render_job(database, settings, first_job).edit
    assert first is not None and first.files.report is not None
    first.files.report.unlink()

    again = submit_shot_list(database, settings, make_project(tmp_path / "p", SMALL)).job_id
    edit = render_job(database, settings, again).edit

    assert edit is not None and edit.reused is None and edit.files.report is not None and edit.files.report.is_file()


def test_the_content_key_follows_order_audio_loudness_and_checks(
    database: Database, database_url: str, tmp_path: Path
) -> None:
    _, job = rendered_job(database, database_url, tmp_path)
    tasks = finished_tasks(database, job)
    shots = edit_shots(tasks, {task.shot_id: video_of(database, job, task) for task in tasks})
    output = OutputSpec(fps=tasks[0].fps, width=tasks[0].width, height=tasks[0].height)
    base = {"output": output, "continuity": ContinuityConfig(), "loudness_lufs": LOUDNESS_LUFS,
            "true_peak_db": TRUE_PEAK_DB, "title": "t"}  # fmt: skip

    key = edit_content_key(shots, **base)  # type: ignore[arg-type]

    assert key == edit_content_key(list(shots), **base)  # type: ignore[arg-type]
    swapped = [shots[1], shots[0], *shots[2:]]
    assert edit_content_key(swapped, **base) != key  # type: ignore[arg-type]
    trimmed = replace(shots[0], audio=replace(shots[0].audio, end_sample=shots[0].audio.end_sample - 1))
    assert edit_content_key([trimmed, *shots[1:]], **base) != key  # type: ignore[arg-type]
    assert edit_content_key(shots, **{**base, "loudness_lufs": LOUDNESS_LUFS - 1}) != key  # type: ignore[arg-type]
    assert edit_content_key(shots, **{**base, "continuity": ContinuityConfig(max_retakes=0)}) != key  # type: ignore[arg-type]


def test_the_plan_cost_names_the_cached_shots_and_where_each_rate_comes_from(
    database: Database, database_url: str, tmp_path: Path
) -> None:
    settings = settings_for(tmp_path, database_url)
    submission = submit_shot_list(database, settings, make_project(tmp_path / "p", SMALL))
    catalog = ModelCatalog.for_settings(settings)
    before = plan_cost(submission.plan, database, catalog)
    assert before.cached == frozenset() and before.to_render_frames == submission.plan.total_frames
    assert {rate.source for rate in before.rates.values()} == {MANIFEST} and before.gpu_hours > 0

    render_without_ray(database, settings, submission.job_id)
    after = plan_cost(submission.plan, database, catalog)

    assert after.cached == {task.shot_id for task in submission.plan.tasks}
    assert after.to_render_frames == 0 and after.gpu_hours == 0
    assert {rate.source for rate in after.rates.values()} == {MEASURED}
