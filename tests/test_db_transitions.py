"""The state machine as the scheduler uses it, on SQLite and PostgreSQL: every allowed transition, the
illegal ones, fencing of late finishes, and the bookkeeping (attempts, events, artifacts, edits)."""

from __future__ import annotations

import itertools
from collections.abc import Callable
from datetime import UTC, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa

from farm.db.errors import UnknownJob, UnknownShot
from farm.db.jobs import cancel_job, retry_job, transition_job
from farm.db.kinds import ArtifactKind, EventKind
from farm.db.lease import claim_driver, heartbeat
from farm.db.machine import ShotMove, move_shots
from farm.db.products import ArtifactRecord, NewEdit, record_artifact, record_edit
from farm.db.queries import find_artifact, find_artifacts, job_detail, job_events, job_state, shots_of_job
from farm.db.session import Database
from farm.db.shots import (
    fail_unrenderable,
    finish_attempt,
    mark_cached,
    recover_orphans,
    report_progress,
    retake_shot,
    start_attempt,
)
from farm.db.states import (
    JOB_TRANSITIONS,
    SHOT_TRANSITIONS,
    AttemptState,
    IllegalTransition,
    JobState,
    LostRace,
    ShotState,
)
from farm.db.tables import Event, Render, Shot
from farm.engine.artifacts import intact_artifact, intact_artifacts
from farm.plan import Plan
from farm.verdicts import Verdict

MakeJob = Callable[..., int]


def video(key: str = "k" * 64) -> ArtifactRecord:
    return ArtifactRecord(key, ArtifactKind.SHOT_VIDEO, f"/store/{key[:8]}.mp4", 1000, "f" * 64, 59, 2.36)


def artifact(db: Database, key: str = "k" * 64) -> int:
    return record_artifact(db, video(key))


def start(db: Database, shot_pk: int, worker: str = "w1") -> int:
    return start_attempt(db, shot_pk, worker=worker, node=f"node-{worker}", device="cuda:0", by="driver")


def finish(db: Database, render_id: int, outcome: AttemptState, shot_state: ShotState, **extra: object) -> bool:
    return finish_attempt(db, render_id, outcome=outcome, shot_state=shot_state, by="driver", **extra)


def shot_id_of(db: Database, pk: int) -> tuple[int, str]:
    with db.read() as connection:
        row = connection.execute(sa.select(Shot.c.job_id, Shot.c.shot_id).where(Shot.c.id == pk)).one()
    return row.job_id, row.shot_id


def requeue(db: Database, pk: int) -> int:
    """A retry of exactly this shot (done ones included: a retake by hand)."""
    job_id, shot_id = shot_id_of(db, pk)
    return retry_job(db, job_id, by="t", shot_ids=[shot_id])


def cancel_queued(db: Database, pk: int) -> int:
    """The shot's job cancelled, which cancels its queued shots."""
    return cancel_job(db, shot_id_of(db, pk)[0], by="t")


def shot_pk(db: Database, job_id: int, shot_id: str = "a") -> int:
    return next(shot.pk for shot in shots_of_job(db, job_id) if shot.shot_id == shot_id)


def shot_state(db: Database, pk: int) -> ShotState:
    with db.read() as connection:
        return connection.execute(sa.select(Shot.c.state).where(Shot.c.id == pk)).scalar_one()


def event_count(db: Database) -> int:
    with db.read() as connection:
        return connection.execute(sa.select(sa.func.count()).select_from(Event)).scalar_one()


def last_shot_event(db: Database, pk: int) -> tuple[str | None, str | None]:
    with db.read() as connection:
        row = connection.execute(
            sa.select(Event.c.old_state, Event.c.new_state)
            .where(Event.c.shot_id == pk)
            .order_by(Event.c.id.desc())
            .limit(1)
        ).one()
    return row.old_state, row.new_state


def drive_shot(db: Database, pk: int, state: ShotState) -> int | None:
    """Bring a queued shot to ``state`` the way the scheduler would; returns the running attempt, if any."""
    if state is ShotState.QUEUED:
        return None
    if state is ShotState.CANCELLED:
        cancel_queued(db, pk)
        return None
    render_id = start(db, pk)
    if state is ShotState.DONE:
        finish(db, render_id, AttemptState.SUCCEEDED, ShotState.DONE, artifacts=[video()])
    elif state is ShotState.FAILED:
        finish(db, render_id, AttemptState.FAILED, ShotState.FAILED, error_class="RenderError", error_message="x")
    return render_id


PERFORM_SHOT: dict[tuple[ShotState, ShotState], Callable[[Database, int, int | None], object]] = {
    (ShotState.QUEUED, ShotState.RUNNING): lambda db, pk, _: start(db, pk),
    (ShotState.QUEUED, ShotState.DONE): lambda db, pk, _: mark_cached(db, pk, artifact(db), by="t"),
    (ShotState.QUEUED, ShotState.CANCELLED): lambda db, pk, _: cancel_queued(db, pk),
    (ShotState.QUEUED, ShotState.FAILED): lambda db, pk, _: fail_unrenderable(db, pk, by="t", reason="upstream"),
    (ShotState.RUNNING, ShotState.DONE): lambda db, _, r: finish(
        db, r, AttemptState.SUCCEEDED, ShotState.DONE, artifacts=[video()]
    ),
    (ShotState.RUNNING, ShotState.QUEUED): lambda db, _, r: finish(db, r, AttemptState.CRASHED, ShotState.QUEUED),
    (ShotState.RUNNING, ShotState.FAILED): lambda db, _, r: finish(db, r, AttemptState.FAILED, ShotState.FAILED),
    (ShotState.RUNNING, ShotState.CANCELLED): lambda db, _, r: finish(
        db, r, AttemptState.CANCELLED, ShotState.CANCELLED
    ),
    (ShotState.DONE, ShotState.QUEUED): lambda db, pk, _: retake_shot(
        db, pk, spec={"seed": 9}, cache_key="n" * 64, by="t", reason="identity"
    ),
    (ShotState.FAILED, ShotState.QUEUED): lambda db, pk, _: requeue(db, pk),
    (ShotState.CANCELLED, ShotState.QUEUED): lambda db, pk, _: requeue(db, pk),
}
ALLOWED_SHOT_PAIRS = {(old, new) for old, targets in SHOT_TRANSITIONS.items() for new in targets}
ILLEGAL_SHOT_PAIRS = set(itertools.product(ShotState, ShotState)) - ALLOWED_SHOT_PAIRS


def test_the_shot_table_allows_exactly_the_designed_transitions() -> None:
    assert set(PERFORM_SHOT) == ALLOWED_SHOT_PAIRS
    assert len(ALLOWED_SHOT_PAIRS) == 11


def test_every_allowed_shot_transition_changes_the_row_and_writes_its_event(
    database: Database, make_job: MakeJob
) -> None:
    for old, new in sorted(ALLOWED_SHOT_PAIRS):
        pk = shot_pk(database, make_job(database))
        render_id = drive_shot(database, pk, old)
        events_before = event_count(database)

        PERFORM_SHOT[old, new](database, pk, render_id)

        assert shot_state(database, pk) is new, f"{old} -> {new}"
        assert last_shot_event(database, pk) == (old.value, new.value), f"{old} -> {new}"
        # Finishing also logs the attempt's end; a queued shot is cancelled by its job's cancel, which logs
        # the job's move and cancels the job's other two queued shots too; retrying it queues the job again.
        expected_events = {
            (ShotState.RUNNING, new): 2,
            (ShotState.QUEUED, ShotState.CANCELLED): 4,
            (ShotState.CANCELLED, ShotState.QUEUED): 2,
        }.get((old, new), 1)
        assert event_count(database) - events_before == expected_events, f"{old} -> {new}"


def test_every_illegal_shot_move_is_refused_by_the_table_and_writes_nothing(
    database: Database, make_job: MakeJob
) -> None:
    for old, new in sorted(ILLEGAL_SHOT_PAIRS):
        pk = shot_pk(database, make_job(database))
        drive_shot(database, pk, old)
        events_before = event_count(database)

        refusal = "is already" if old is new else f"cannot go from {old} to {new}"
        with pytest.raises(IllegalTransition, match=refusal), database.write() as connection:
            move_shots(connection, ShotMove(old, new, EventKind.SHOT_REQUEUED), where=[Shot.c.id == pk], by="t")

        assert shot_state(database, pk) is old
        assert event_count(database) == events_before


def test_every_allowed_job_transition_is_performed_and_every_other_refused(
    database: Database, make_job: MakeJob
) -> None:
    phases = [JobState.RENDERING, JobState.ASSEMBLING, JobState.CHECKING]
    paths = {
        JobState.QUEUED: [],
        JobState.RENDERING: phases[:1],
        JobState.ASSEMBLING: phases[:2],
        JobState.CHECKING: phases,
        JobState.RETAKING: [*phases, JobState.RETAKING],
        JobState.DONE: [*phases, JobState.DONE],
        JobState.FAILED: [JobState.RENDERING, JobState.FAILED],
        JobState.CANCELLED: [JobState.CANCELLED],
    }
    assert set(paths) == set(JobState)
    for old, new in itertools.product(JobState, JobState):
        job_id = make_job(database)
        for step in paths[old]:
            transition_job(database, job_id, step, by="t")
        if new in JOB_TRANSITIONS[old]:
            assert transition_job(database, job_id, new, by="t", message="why") is old
            assert job_state(database, job_id) is new
            last = job_events(database, job_id)[-1]
            assert (last.kind, last.old_state, last.new_state, last.message) == ("job.state", old, new, "why")
        else:
            refusal = f"job {job_id} is already {old}" if old is new else f"job {job_id} cannot go from {old} to {new}"
            with pytest.raises(IllegalTransition, match=refusal):
                transition_job(database, job_id, new, by="t")
            assert job_state(database, job_id) is old


def test_job_timings_follow_its_states(database: Database, make_job: MakeJob) -> None:
    job_id = make_job(database)
    transition_job(database, job_id, JobState.RENDERING, by="t")
    first_start = job_detail(database, job_id).job.started_at
    transition_job(database, job_id, JobState.FAILED, by="t")
    failed = job_detail(database, job_id).job
    transition_job(database, job_id, JobState.QUEUED, by="t")
    transition_job(database, job_id, JobState.RENDERING, by="t")
    resumed = job_detail(database, job_id).job

    assert first_start is not None and first_start.tzinfo is UTC
    assert failed.finished_at is not None and failed.finished_at >= first_start
    assert resumed.started_at == first_start
    assert resumed.finished_at is None


def test_expected_state_mismatch_is_a_lost_race(database: Database, make_job: MakeJob) -> None:
    job_id = make_job(database)
    transition_job(database, job_id, JobState.RENDERING, by="driver-1")

    with pytest.raises(LostRace, match=f"job {job_id} is rendering, not queued"):
        transition_job(database, job_id, JobState.RENDERING, by="driver-2", expected={JobState.QUEUED})


def test_claiming_a_shot_counts_the_attempt_and_logs_the_worker(database: Database, make_job: MakeJob) -> None:
    job_id = make_job(database)
    pk = shot_pk(database, job_id)

    render_id = start(database, pk, worker="gpu-3")

    shot = job_detail(database, job_id).shots[0]
    assert (shot.state, shot.attempts, shot.render_id, shot.worker, shot.node) == (
        ShotState.RUNNING,
        1,
        render_id,
        "gpu-3",
        "node-gpu-3",
    )
    event = job_events(database, job_id)[-1]
    assert (event.kind, event.shot_id, event.render_id, event.attempt_no) == ("shot.started", "a", render_id, 1)


def test_a_shot_that_is_not_queued_cannot_be_claimed(database: Database, make_job: MakeJob) -> None:
    pk = shot_pk(database, make_job(database))
    start(database, pk, worker="w1")

    with pytest.raises(LostRace, match="shot a of job 1 is running, not queued"):
        start(database, pk, worker="w2")
    with database.read() as connection:
        assert connection.execute(sa.select(sa.func.count()).select_from(Render)).scalar_one() == 1


def test_late_finish_from_an_older_attempt_is_refused(database: Database, make_job: MakeJob) -> None:
    job_id = make_job(database)
    pk = shot_pk(database, job_id)
    first = start(database, pk, worker="lost-node")
    assert recover_orphans(database, job_id, by="driver-2") == 1
    second = start(database, pk, worker="w2")
    artifact(database)
    events_before = event_count(database)

    late = finish(database, first, AttemptState.SUCCEEDED, ShotState.DONE, artifacts=[video()])

    assert late is False
    assert event_count(database) == events_before
    shot = job_detail(database, job_id).shots[0]
    assert (shot.state, shot.render_id, shot.artifact_id) == (ShotState.RUNNING, second, None)
    assert finish(database, second, AttemptState.SUCCEEDED, ShotState.DONE, artifacts=[video()])
    assert job_detail(database, job_id).shots[0].state is ShotState.DONE


def test_a_finish_arriving_twice_counts_once(database: Database, make_job: MakeJob) -> None:
    pk = shot_pk(database, make_job(database))
    render_id = start(database, pk)

    assert finish(database, render_id, AttemptState.SUCCEEDED, ShotState.DONE, gpu_seconds=30.0)
    assert not finish(database, render_id, AttemptState.SUCCEEDED, ShotState.DONE, gpu_seconds=30.0)
    assert job_detail(database, 1).shots[0].gpu_seconds == 30.0


@pytest.mark.parametrize(
    ("outcome", "new_state"),
    [
        (AttemptState.SUCCEEDED, ShotState.FAILED),
        (AttemptState.FAILED, ShotState.DONE),
        (AttemptState.RUNNING, ShotState.QUEUED),
        (AttemptState.CANCELLED, ShotState.DONE),
    ],
)
def test_an_attempt_outcome_must_agree_with_its_shots_new_state(
    database: Database, make_job: MakeJob, outcome: AttemptState, new_state: ShotState
) -> None:
    pk = shot_pk(database, make_job(database))
    render_id = start(database, pk)

    with pytest.raises(IllegalTransition):
        finish(database, render_id, outcome, new_state)
    assert shot_state(database, pk) is ShotState.RUNNING


def test_failed_attempt_keeps_its_error_on_the_shot_and_the_attempt(database: Database, make_job: MakeJob) -> None:
    job_id = make_job(database)
    pk = shot_pk(database, job_id)
    render_id = start(database, pk)

    finish(
        database, render_id, AttemptState.FAILED, ShotState.QUEUED, error_class="RenderError",
        error_message="no face in portrait", gpu_seconds=12.5, warnings=["lip sync weak"],
    )  # fmt: skip

    shot = job_detail(database, job_id).shots[0]
    assert (shot.state, shot.last_error, shot.gpu_seconds, shot.attempt_state) == (
        ShotState.QUEUED,
        "RenderError: no face in portrait",
        12.5,
        "failed",
    )
    with database.read() as connection:
        attempt = connection.execute(sa.select(Render).where(Render.c.id == render_id)).one()
    assert (attempt.error_class, attempt.error_message, attempt.warnings) == (
        "RenderError",
        "no face in portrait",
        ["lip sync weak"],
    )
    # The retry succeeds: the error is cleared on the shot and the GPU time adds up.
    retry = start(database, pk)
    finish(database, retry, AttemptState.SUCCEEDED, ShotState.DONE, artifacts=[video()], gpu_seconds=20.0)
    shot = job_detail(database, job_id).shots[0]
    assert (shot.attempts, shot.last_error, shot.gpu_seconds, shot.artifact_path) == (
        2,
        None,
        32.5,
        "/store/kkkkkkkk.mp4",
    )


def test_progress_is_recorded_only_while_the_attempt_runs(database: Database, make_job: MakeJob) -> None:
    job_id = make_job(database)
    render_id = start(database, shot_pk(database, job_id))
    events_before = event_count(database)

    assert report_progress(database, render_id, 0.4, "denoise")
    assert report_progress(database, render_id, 7.0, "encode")  # clamped to 1
    progress = job_detail(database, job_id).shots[0]
    assert (progress.progress, progress.phase) == (1.0, "encode")
    assert event_count(database) == events_before

    finish(database, render_id, AttemptState.CRASHED, ShotState.QUEUED)
    assert not report_progress(database, render_id, 0.5, "denoise")


def test_cache_hit_marks_a_queued_shot_done_and_cached(database: Database, make_job: MakeJob) -> None:
    job_id = make_job(database)
    pk = shot_pk(database, job_id)
    artifact_id = artifact(database)

    assert mark_cached(database, pk, artifact_id, by="driver")
    assert not mark_cached(database, pk, artifact_id, by="driver")

    shot = job_detail(database, job_id).shots[0]
    assert (shot.state, shot.cached, shot.attempts, shot.artifact_id) == (ShotState.DONE, True, 0, artifact_id)
    assert job_events(database, job_id)[-1].kind == "shot.cached"


def test_recording_the_same_artifact_twice_keeps_one_row_describing_the_file_recorded_last(database: Database) -> None:
    key, shot_video, last_frames = "c" * 64, ArtifactKind.SHOT_VIDEO, ArtifactKind.LAST_FRAMES
    first = record_artifact(database, ArtifactRecord(key, shot_video, "/a.mp4", 5, "1" * 64, 10, 0.4))
    second = record_artifact(database, ArtifactRecord(key, shot_video, "/b.mp4", 6, "2" * 64, 10, 0.4))
    tail = record_artifact(database, ArtifactRecord(key, last_frames, "/t.npz", 7, "3" * 64, 5))

    assert first == second != tail
    info = find_artifact(database, key, shot_video)
    # a key rendered again (its file was truncated) records the new file: the row matches the bytes on disk
    assert info is not None and (info.id, info.kind, info.path, info.sha256) == (first, shot_video, "/b.mp4", "2" * 64)
    assert info.created_at.tzinfo is UTC
    assert find_artifact(database, "d" * 64, shot_video) is None


def test_artifacts_looked_up_together_are_those_looked_up_one_by_one(database: Database, tmp_path: Path) -> None:
    """``farm plan`` asks about all its keys at once (in chunks); a hit is the same hit either way."""
    keys = [f"{index:064x}" for index in range(1001)]  # three chunks
    intact, truncated = tmp_path / "intact.mp4", tmp_path / "truncated.mp4"
    intact.write_bytes(b"x" * 5)
    truncated.write_bytes(b"x" * 3)
    recorded = {keys[0]: intact, keys[500]: truncated, keys[1000]: tmp_path / "gone.mp4"}
    for key, path in recorded.items():
        record_artifact(database, ArtifactRecord(key, ArtifactKind.SHOT_VIDEO, str(path), 5, "1" * 64, 10, 0.4))
    record_artifact(database, ArtifactRecord(keys[1], ArtifactKind.LAST_FRAMES, str(intact), 5, "1" * 64, 5))

    found = find_artifacts(database, [*keys, keys[0]], ArtifactKind.SHOT_VIDEO)
    assert found == {key: find_artifact(database, key, ArtifactKind.SHOT_VIDEO) for key in recorded}
    hits = intact_artifacts(database, keys)
    assert hits == {keys[0]: found[keys[0]]}
    assert all((intact_artifact(database, key) is not None) == (key in hits) for key in [*recorded, keys[1]])


def test_the_database_refuses_a_kind_or_verdict_outside_its_vocabulary(database: Database, make_job: MakeJob) -> None:
    job_id = make_job(database)
    with pytest.raises(sa.exc.IntegrityError), database.write() as connection:
        connection.execute(
            sa.text(
                "INSERT INTO artifacts (cache_key, kind, path, bytes, sha256, created_at) "
                "VALUES ('x', 'video', '/x', 1, 'y', CURRENT_TIMESTAMP)"
            )
        )
    with pytest.raises(sa.exc.IntegrityError), database.write() as connection:
        connection.execute(
            sa.text(
                "INSERT INTO edits (job_id, version, video_path, verdict, summary, created_at) "
                f"VALUES ({job_id}, 1, '/e.mp4', 'great', '{{}}', CURRENT_TIMESTAMP)"
            )
        )
    with pytest.raises(sa.exc.IntegrityError), database.write() as connection:
        connection.execute(
            sa.text(
                "INSERT INTO events (at, changed_by, kind, job_id, message) "
                f"VALUES (CURRENT_TIMESTAMP, 't', 'shot.exploded', {job_id}, '')"
            )
        )


def test_edits_get_increasing_versions_and_none_is_overwritten(database: Database, make_job: MakeJob) -> None:
    job_id = make_job(database)

    first = record_edit(database, job_id, NewEdit("/e1.mp4", "/e1.otio", None, Verdict.WARN, {"checks": 3}), by="t")
    second = record_edit(database, job_id, NewEdit("/e2.mp4", None, "/r2.html", Verdict.PASS, {}), by="t")

    assert (first[1], second[1]) == (1, 2)
    assert first[0] != second[0]
    edit = job_detail(database, job_id).latest_edit
    assert edit is not None and (edit.version, edit.video_path, edit.verdict) == (2, "/e2.mp4", Verdict.PASS)
    with pytest.raises(UnknownJob):
        record_edit(database, 999, NewEdit("/x", None, None, Verdict.PASS, {}), by="t")


def test_cancelling_a_job_cancels_its_queued_shots_and_leaves_running_ones_to_their_driver(
    database: Database, make_job: MakeJob
) -> None:
    job_id = make_job(database)
    transition_job(database, job_id, JobState.RENDERING, by="driver")
    render_id = start(database, shot_pk(database, job_id, "a"))

    assert cancel_job(database, job_id, by="producer") == 2

    states = {shot.shot_id: shot.state for shot in shots_of_job(database, job_id)}
    assert states == {"a": ShotState.RUNNING, "b": ShotState.CANCELLED, "c": ShotState.CANCELLED}
    assert job_state(database, job_id) is JobState.CANCELLED
    assert finish(database, render_id, AttemptState.CANCELLED, ShotState.CANCELLED)
    assert job_state(database, job_id) is JobState.CANCELLED
    with pytest.raises(IllegalTransition, match=f"job {job_id} is already cancelled; there is nothing to cancel"):
        cancel_job(database, job_id, by="producer")


def test_retrying_a_job_requeues_failed_and_cancelled_shots_and_the_job(database: Database, make_job: MakeJob) -> None:
    job_id = make_job(database)
    transition_job(database, job_id, JobState.RENDERING, by="driver")
    drive_shot(database, shot_pk(database, job_id, "a"), ShotState.DONE)
    drive_shot(database, shot_pk(database, job_id, "b"), ShotState.FAILED)
    fail_unrenderable(database, shot_pk(database, job_id, "c"), by="driver", reason="it continues a failed shot")
    # The last shot to finish settled the job: one failed, so the job did.
    assert job_state(database, job_id) is JobState.FAILED

    assert retry_job(database, job_id, by="editor") == 2

    states = {shot.shot_id: shot.state for shot in shots_of_job(database, job_id)}
    assert states == {"a": ShotState.DONE, "b": ShotState.QUEUED, "c": ShotState.QUEUED}
    assert job_state(database, job_id) is JobState.QUEUED
    messages = [event.message for event in job_events(database, job_id)[-3:]]
    assert messages == ["retry", "retry", "shots queued again"]


def test_retrying_named_shots_retakes_done_ones_and_refuses_unknown_or_running(
    database: Database, make_job: MakeJob
) -> None:
    job_id = make_job(database)
    transition_job(database, job_id, JobState.RENDERING, by="driver")
    for shot_id in ("a", "b"):
        drive_shot(database, shot_pk(database, job_id, shot_id), ShotState.DONE)
    start(database, shot_pk(database, job_id, "c"))

    with pytest.raises(UnknownShot, match=f"job {job_id} has no shot zz"):
        retry_job(database, job_id, by="editor", shot_ids=["a", "zz"])
    with pytest.raises(IllegalTransition, match="shot c of job 1 is running"):
        retry_job(database, job_id, by="editor", shot_ids=["c"])
    assert retry_job(database, job_id, by="editor", shot_ids=["a"]) == 1

    states = {shot.shot_id: shot.state for shot in shots_of_job(database, job_id)}
    assert states == {"a": ShotState.QUEUED, "b": ShotState.DONE, "c": ShotState.RUNNING}
    assert job_events(database, job_id)[-1].message == "retake"


def test_recovering_orphans_crashes_running_attempts_and_requeues_their_shots(
    database: Database, make_job: MakeJob
) -> None:
    job_id = make_job(database)
    renders = [start(database, shot_pk(database, job_id, shot_id)) for shot_id in ("a", "b")]

    assert recover_orphans(database, job_id, by="driver-2") == 2

    detail = job_detail(database, job_id)
    assert [(shot.state, shot.attempt_state) for shot in detail.shots[:2]] == [(ShotState.QUEUED, "crashed")] * 2
    assert all(shot.last_error and shot.last_error.startswith("DriverLost") for shot in detail.shots[:2])
    kinds = [(event.kind, event.render_id) for event in job_events(database, job_id)[-4:]]
    assert sorted(kinds) == sorted([("render.finished", r) for r in renders] + [("shot.recovered", r) for r in renders])
    assert recover_orphans(database, job_id, by="driver-2") == 0


def test_driver_heartbeat_and_takeover(database: Database, make_job: MakeJob) -> None:
    job_id = make_job(database)

    heartbeat(database, job_id, "driver-1")
    beat = job_detail(database, job_id).job.driver_heartbeat_at
    assert not claim_driver(database, job_id, "driver-2", stale_after=60)
    assert claim_driver(database, job_id, "driver-2", stale_after=0)

    job = job_detail(database, job_id).job
    assert job.driver_id == "driver-2"
    assert beat is not None and job.driver_heartbeat_at is not None and job.driver_heartbeat_at >= beat
    assert [event.message for event in job_events(database, job_id) if event.kind == "job.driver"] == [
        "driver-1 drives the job",
        "driver-2 drives the job (was driver-1)",
    ]
    with pytest.raises(UnknownJob):
        heartbeat(database, 999, "driver-1")


def test_submitted_job_holds_the_plan(database: Database, make_job: MakeJob, plan: Plan) -> None:
    job_id = make_job(database, submitted_by="producer", priority=5)

    shots = shots_of_job(database, job_id)
    summary = job_detail(database, job_id).job
    assert (summary.project, summary.episode, summary.priority, summary.submitted_by) == (
        "Test Show",
        "07",
        5,
        "producer",
    )
    assert summary.shot_list_path == str(plan.shot_list)
    assert [(shot.shot_id, shot.scene_id, shot.edit_order) for shot in shots] == [
        ("a", "sc01", 0),
        ("b", "sc01", 1),
        ("c", "sc01", 2),
    ]
    assert [shot.cache_key for shot in shots] == [task.cache_key for task in plan.tasks]
    assert shots[2].spec == plan.tasks[2].to_json()
    assert {shot.state for shot in shots} == {ShotState.QUEUED}
    events = job_events(database, job_id)
    assert [(event.kind, event.new_state) for event in events] == [("job.submitted", "queued")] + [
        ("shot.created", "queued")
    ] * 3
    assert events[0].at - summary.submitted_at < timedelta(seconds=1)
    with pytest.raises(UnknownJob, match="job 999 is not in the database"):
        shots_of_job(database, 999)


def test_a_successful_finish_records_its_artifacts_in_the_same_transaction(
    database: Database, make_job: MakeJob
) -> None:
    pk = shot_pk(database, make_job(database))
    render_id = start(database, pk)
    shot_video = ArtifactRecord("v" * 64, ArtifactKind.SHOT_VIDEO, "/store/v.mp4", 1000, "a" * 64, 59, 2.36)
    tail = ArtifactRecord("v" * 64, ArtifactKind.LAST_FRAMES, "/store/v.npz", 10, "b" * 64)
    timings = {"render": 1.5}

    assert finish(
        database, render_id, AttemptState.SUCCEEDED, ShotState.DONE, artifacts=[shot_video, tail], timings=timings
    )

    recorded_video = find_artifact(database, "v" * 64, ArtifactKind.SHOT_VIDEO)
    assert recorded_video is not None and find_artifact(database, "v" * 64, ArtifactKind.LAST_FRAMES) is not None
    with database.read() as connection:
        shot_artifact = connection.execute(sa.select(Shot.c.artifact_id).where(Shot.c.id == pk)).scalar_one()
    assert shot_artifact == recorded_video.id
    with database.read() as connection:
        recorded = connection.execute(sa.select(Render.c.timings).where(Render.c.id == render_id)).scalar_one()
    assert recorded == timings


def test_a_late_finish_still_keeps_its_artifacts_but_not_the_shot(database: Database, make_job: MakeJob) -> None:
    pk = shot_pk(database, make_job(database))
    first = start(database, pk)
    finish(database, first, AttemptState.CRASHED, ShotState.QUEUED)
    start(database, pk, worker="w2")
    late_video = ArtifactRecord("w" * 64, ArtifactKind.SHOT_VIDEO, "/store/w.mp4", 1000, "a" * 64, 59, 2.36)

    assert not finish(database, first, AttemptState.SUCCEEDED, ShotState.DONE, artifacts=[late_video])
    assert shot_state(database, pk) is ShotState.RUNNING
    assert (
        find_artifact(database, "w" * 64, ArtifactKind.SHOT_VIDEO) is not None
    )  # the file is valid content all the same
