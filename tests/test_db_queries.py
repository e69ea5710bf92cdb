"""The reads behind ``farm status``, on SQLite and PostgreSQL: counts, scene rollups, ETA, listing filters."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from datetime import timedelta

import pytest
import sqlalchemy as sa

from farm.db.jobs import transition_job
from farm.db.kinds import ArtifactKind
from farm.db.products import ArtifactRecord
from farm.db.queries import estimate_eta, job_detail, job_events, job_summaries, shots_of_job
from farm.db.session import Database
from farm.db.shots import finish_attempt, report_progress, start_attempt
from farm.db.states import AttemptState, JobState, ShotState
from farm.db.tables import Render
from farm.plan import Plan
from tests.db_records import submit_plan


def two_scene_plan(plan: Plan) -> Plan:
    """The template's three shots, then the same three again as scene sc02."""
    again = tuple(
        replace(task, shot_id=f"{task.shot_id}2", scene_id="sc02", order=task.order + 3, continues=None)
        for task in plan.tasks
    )
    return replace(plan, tasks=plan.tasks + again)


def started_ago(db: Database, render_id: int, seconds: float) -> None:
    """Make a running attempt have started ``seconds`` ago (the tests cannot wait for real renders)."""
    with db.write() as connection:
        started = connection.execute(sa.select(Render.c.started_at).where(Render.c.id == render_id)).scalar_one()
        connection.execute(
            sa.update(Render).where(Render.c.id == render_id).values(started_at=started - timedelta(seconds=seconds))
        )


@pytest.fixture
def busy_job(database: Database, plan: Plan) -> int:
    """sc01: a done (rendered at 2 frames/s), b failed, c running at 50 %; sc02: all queued."""
    job_id = submit_plan(database, two_scene_plan(plan), submitted_by="p", quality="preview")
    transition_job(database, job_id, JobState.RENDERING, by="d")
    pks = {shot.shot_id: shot.pk for shot in shots_of_job(database, job_id)}
    first = start_attempt(database, pks["a"], worker="w", node="n1", device="cuda:0", by="d")
    started_ago(database, first, plan.tasks[0].frames / 2)
    video = ArtifactRecord("a" * 64, ArtifactKind.SHOT_VIDEO, "/a.mp4", 1, "a" * 64, plan.tasks[0].frames, 2.36)
    finish_attempt(database, first, outcome=AttemptState.SUCCEEDED, shot_state=ShotState.DONE, by="d",
                   artifacts=[video], gpu_seconds=3600.0)  # fmt: skip
    second = start_attempt(database, pks["b"], worker="w", node="n2", device="cuda:0", by="d")
    finish_attempt(database, second, outcome=AttemptState.FAILED, shot_state=ShotState.FAILED, by="d",
                   error_class="RenderError", error_message="bad portrait", gpu_seconds=1800.0)  # fmt: skip
    third = start_attempt(database, pks["c"], worker="w", node="n1", device="cuda:0", by="d")
    report_progress(database, third, 0.5, "denoise")
    return job_id


def test_counts_rollups_and_eta_of_a_job(database: Database, busy_job: int, plan: Plan) -> None:
    detail = job_detail(database, busy_job)

    frames = [task.frames for task in plan.tasks]
    job = detail.job
    assert (job.shots.total, job.shots.done, job.shots.failed, job.shots.running, job.shots.queued) == (6, 1, 1, 1, 3)
    assert (job.shots.frames_total, job.shots.frames_done) == (2 * sum(frames), frames[0])
    assert job.gpu_hours == 1.5
    assert job.frames_per_second == pytest.approx(2.0, rel=0.02)
    # Left: half of c, and all of sc02; at 2 frames/s with one attempt running.
    assert job.eta_seconds == pytest.approx((frames[2] * 0.5 + sum(frames)) / 2.0, rel=0.02)
    assert [(scene.scene_id, scene.shots.total, scene.shots.done, scene.shots.queued) for scene in detail.scenes] == [
        ("sc01", 3, 1, 0),
        ("sc02", 3, 0, 3),
    ]
    assert [scene.gpu_seconds for scene in detail.scenes] == [5400.0, 0.0]
    assert [shot.shot_id for shot in detail.failures] == ["b"]
    assert [shot.shot_id for shot in detail.shots] == ["a", "b", "c", "a2", "b2", "c2"]
    assert detail.shot_states is None


def test_listing_some_shots_keeps_the_counts_and_the_failures(database: Database, busy_job: int) -> None:
    whole = job_detail(database, busy_job)
    running = job_detail(database, busy_job, shot_states=[ShotState.RUNNING])
    small_job_whole = job_detail(database, busy_job, shot_states=[ShotState.RUNNING], all_shots_up_to=6)

    assert [shot.shot_id for shot in running.shots] == ["c"]
    assert running.shot_states == {ShotState.RUNNING}
    assert [shot.shot_id for shot in running.failures] == ["b"]
    assert (running.job.shots, running.scenes, running.job.eta_seconds) == (
        whole.job.shots,
        whole.scenes,
        pytest.approx(whole.job.eta_seconds, rel=1e-6),
    )
    assert len(small_job_whole.shots) == 6 and small_job_whole.shot_states is None


def test_a_running_shot_row_carries_its_attempt(database: Database, busy_job: int) -> None:
    c = next(shot for shot in job_detail(database, busy_job).shots if shot.shot_id == "c")

    assert (c.state, c.attempts, c.node, c.device, c.progress, c.phase, c.finished_at) == (
        ShotState.RUNNING,
        1,
        "n1",
        "cuda:0",
        0.5,
        "denoise",
        None,
    )
    assert c.duration_seconds is not None and c.duration_seconds >= 0


def test_job_summaries_list_newest_first_with_the_same_numbers(
    database: Database, busy_job: int, make_job: Callable[..., int]
) -> None:
    newer = make_job(database)

    summaries = job_summaries(database)
    assert [summary.id for summary in summaries] == [newer, busy_job]
    assert summaries[1] == job_detail(database, busy_job).job
    assert summaries[0].shots.queued == 3 and summaries[0].eta_seconds is None
    assert job_summaries(database, limit=1)[0].id == newer


def test_eta_rules() -> None:
    assert estimate_eta(JobState.RENDERING, 100.0, 2.0, 1) == 50.0
    assert estimate_eta(JobState.RENDERING, 100.0, 2.0, 4) == 12.5
    assert estimate_eta(JobState.QUEUED, 100.0, 2.0, 0) == 50.0
    assert estimate_eta(JobState.RENDERING, 100.0, None, 3) is None
    assert estimate_eta(JobState.RENDERING, 0.0, None, 0) == 0.0
    assert estimate_eta(JobState.DONE, 100.0, 2.0, 0) == 0.0


def test_rows_built_for_speed_are_whole_dataclasses(database: Database, busy_job: int) -> None:
    detail = job_detail(database, busy_job)
    events = job_events(database, busy_job)

    for record in (*detail.shots, *events):
        assert replace(record) == record  # every field present and in its place
    assert {shot.shot_id: shot.artifact_path for shot in detail.shots}["a"] == "/a.mp4"
    assert events[-1].kind == "shot.started" and events[-1].attempt_no == 1


def test_a_status_read_on_sqlite_never_reads_the_shot_rows(database: Database, busy_job: int) -> None:
    """Each shot row holds its planned task (about 1.5 KB): the rollups and the every-shot listing of a big
    job read covering indexes instead, which the query plans SQLite chose show."""
    if database.sql_engine.dialect.name != "sqlite":
        pytest.skip("the covering indexes are SQLite's (PostgreSQL hash-joins the listing)")
    statements: list[tuple[str, object]] = []

    def capture(connection: object, cursor: object, statement: str, parameters: object, *_: object) -> None:
        statements.append((statement, parameters))

    sa.event.listen(database.sql_engine, "before_cursor_execute", capture)
    try:
        job_detail(database, busy_job)
    finally:
        sa.event.remove(database.sql_engine, "before_cursor_execute", capture)

    with database.sql_engine.connect() as connection:
        plans = {
            statement: [row[3] for row in connection.exec_driver_sql(f"EXPLAIN QUERY PLAN {statement}", parameters)]
            for statement, parameters in statements
            if statement.lstrip().upper().startswith("SELECT") and "FROM shots" in statement
        }
    shot_scans = [step for plan in plans.values() for step in plan if step.startswith(("SEARCH shots", "SCAN shots"))]
    assert len(shot_scans) >= 2
    assert all("COVERING INDEX" in step for step in shot_scans), shot_scans
