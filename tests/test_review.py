"""A producer's review of an edit and the producer's status of a job, from the machine's states up."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from farm.db.jobs import transition_job
from farm.db.kinds import EventKind, Review
from farm.db.producer import BUCKETS, ProducerStatus, TrackerBucket, producer_status
from farm.db.products import NewEdit, record_edit
from farm.db.queries import job_events, shots_of_job
from farm.db.states import IllegalTransition, JobState, ShotState
from farm.errors import InvalidValue
from farm.jobs import Farm, UnknownShot
from farm.plan import Plan
from farm.settings import REPO_ROOT
from farm.verdicts import Verdict
from tests.db_records import done_job, make_farm


@pytest.mark.parametrize(
    ("state", "verdict", "review", "status"),
    [
        (JobState.QUEUED, None, None, ProducerStatus.READY),
        (JobState.CANCELLED, None, None, ProducerStatus.TODO),
        (JobState.RENDERING, None, None, ProducerStatus.RENDERING),
        (JobState.CHECKING, Verdict.PASS, None, ProducerStatus.RENDERING),
        (JobState.RETAKING, Verdict.FAIL, None, ProducerStatus.RENDERING),
        (JobState.DONE, Verdict.PASS, None, ProducerStatus.WAITING_FOR_APPROVAL),
        (JobState.DONE, Verdict.WARN, None, ProducerStatus.WAITING_FOR_APPROVAL),
        (JobState.DONE, Verdict.FAIL, None, ProducerStatus.RETAKE),
        (JobState.FAILED, None, None, ProducerStatus.RETAKE),
        (JobState.DONE, Verdict.PASS, Review.RETAKE, ProducerStatus.RETAKE),
        (JobState.DONE, Verdict.WARN, Review.APPROVED, ProducerStatus.DONE),
    ],
)
def test_the_producer_status_follows_the_job_state_the_edit_verdict_and_its_review(
    state: JobState, verdict: Verdict | None, review: Review | None, status: ProducerStatus
) -> None:
    assert producer_status(state, verdict, review) is status


def test_every_producer_status_has_a_tracker_bucket() -> None:
    assert set(BUCKETS) == set(ProducerStatus)
    assert BUCKETS[ProducerStatus.DONE] is TrackerBucket.DONE
    assert BUCKETS[ProducerStatus.RETAKE] is TrackerBucket.BLOCKED


@pytest.fixture
def farm(database_url: str, tmp_path: Path) -> Farm:
    return make_farm(database_url, tmp_path / "data")


def test_an_approved_edit_makes_the_job_done_for_the_producer(farm: Farm, plan: Plan) -> None:
    job_id = done_job(farm.database(write=True), plan)
    assert farm.jobs()[0].producer_status is ProducerStatus.WAITING_FOR_APPROVAL

    edit = farm.review(job_id, "approved", comment="lovely", by="pat")

    assert (edit.version, edit.review, edit.review_comment, edit.reviewed_by) == (1, Review.APPROVED, "lovely", "pat")
    job = farm.jobs()[0]
    assert (job.producer_status, job.tracker_bucket, job.edit_version, job.edit_verdict) == (
        ProducerStatus.DONE,
        TrackerBucket.DONE,
        1,
        Verdict.PASS,
    )
    reviewed = [event for event in farm.events(job_id) if event.kind is EventKind.EDIT_REVIEWED]
    assert [(event.changed_by, event.message) for event in reviewed] == [("pat", "v1 approved: lovely")]


def test_a_retake_sends_the_named_shot_back_with_a_new_seed(farm: Farm, plan: Plan) -> None:
    """c continues a, but the previz model does not read the continuation: c's key, and c, stay."""
    db = farm.database(write=True)
    job_id = done_job(db, plan)
    before = {shot.shot_id: shot for shot in shots_of_job(db, job_id)}

    farm.review(job_id, "retake", shots=["a"], comment="too stiff", by="pat")

    after = {shot.shot_id: shot for shot in shots_of_job(db, job_id)}
    assert {shot_id for shot_id, shot in after.items() if shot.state is ShotState.QUEUED} == {"a"}
    assert [after[shot].cache_key == before[shot].cache_key for shot in "abc"] == [False, True, True]
    assert after["a"].spec["seed"] != before["a"].spec["seed"]
    reasons = {row.shot_id: row.retake_reason for row in farm.status(job_id).shots}
    assert reasons == {"a": "sent back by pat: too stiff", "b": None, "c": None}
    status = farm.status(job_id, shot_states=())
    assert (status.job.state, status.job.producer_status) == (JobState.QUEUED, ProducerStatus.READY)
    kinds = [event.kind for event in job_events(db, job_id)][-3:]
    assert kinds == [EventKind.EDIT_REVIEWED, EventKind.SHOT_REQUEUED, EventKind.JOB_STATE]


def test_a_review_is_refused_with_what_to_do_and_changes_nothing(farm: Farm, plan: Plan) -> None:
    db = farm.database(write=True)
    job_id = done_job(db, plan, Verdict.FAIL)
    record_edit(db, job_id, NewEdit("/edits/v2.mp4", None, None, Verdict.PASS, {}), by="driver")
    events = len(job_events(db, job_id))

    with pytest.raises(IllegalTransition, match="not its newest \\(v2\\); review v2"):
        farm.review(job_id, "approved", version=1)
    with pytest.raises(InvalidValue, match="names no shots"):
        farm.review(job_id, "approved", shots=["a"])
    with pytest.raises(InvalidValue, match="needs a comment"):
        farm.review(job_id, "retake", shots=["a"])
    with pytest.raises(UnknownShot, match="no shot zz; its shots are a, b, c"):
        farm.review(job_id, "retake", shots=["zz"], comment="x")
    transition_job(db, job_id, JobState.QUEUED, by="retry")
    with pytest.raises(IllegalTransition, match=r"job \d+ is queued"):
        farm.review(job_id, "approved")

    assert len(job_events(db, job_id)) == events + 1  # the transition above, nothing from the refusals
    assert all(edit.review is None for edit in farm.edits(job_id))


def _cli(*args: str, data_dir: Path, url: str, columns: int | None = None) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "FARM_DATA_DIR": str(data_dir), "PYTHONPATH": str(REPO_ROOT), "TZ": "UTC"}
    if columns is not None:
        env["COLUMNS"] = str(columns)
    return subprocess.run(
        [sys.executable, "-m", "farm", *args, "--db", url], env=env, capture_output=True, text=True, timeout=120
    )


def test_the_job_list_shows_the_producer_status_and_the_edit_verdict_and_fits_80_columns(
    farm: Farm, plan: Plan, database_url: str, tmp_path: Path
) -> None:
    db = farm.database(write=True)
    failed_qc = done_job(db, plan, Verdict.FAIL)
    waiting = done_job(db, plan, Verdict.PASS)
    data_dir = tmp_path / "data"

    wide = _cli("status", data_dir=data_dir, url=database_url)
    narrow = _cli("status", data_dir=data_dir, url=database_url, columns=80)
    listed = json.loads(_cli("status", "--json", data_dir=data_dir, url=database_url).stdout)

    assert wide.returncode == 0 and narrow.returncode == 0, wide.stderr + narrow.stderr
    rows = {job: next(line for line in narrow.stdout.splitlines() if line.startswith(f"│ {job:>3} ")) for job in (1, 2)}
    assert "retake" in rows[failed_qc] and "v1 fail" in rows[failed_qc]
    assert "waiting approval" in rows[waiting] and "v1 pass" in rows[waiting]
    assert max(len(line) for line in narrow.stdout.splitlines()) <= 80
    assert "GPU-h" in wide.stdout and "GPU-h" not in narrow.stdout
    by_id = {job["id"]: job for job in listed["jobs"]}
    assert (by_id[failed_qc]["producer_status"], by_id[failed_qc]["edit_verdict"]) == ("retake", "fail")
    assert (by_id[waiting]["producer_status"], by_id[waiting]["tracker_bucket"]) == ("wfa", "in_progress")


def test_exit_status_says_whether_the_edit_is_good_and_review_is_a_command(
    farm: Farm, plan: Plan, database_url: str, tmp_path: Path
) -> None:
    db = farm.database(write=True)
    failed_qc = done_job(db, plan, Verdict.FAIL)
    good = done_job(db, plan, Verdict.WARN)
    data_dir = tmp_path / "data"

    assert _cli("status", str(failed_qc), "--exit-status", data_dir=data_dir, url=database_url).returncode == 1
    assert _cli("status", str(good), "--exit-status", data_dir=data_dir, url=database_url).returncode == 0
    approve = _cli("review", str(good), "approve", "-m", "ship it", data_dir=data_dir, url=database_url)
    refused = _cli("review", str(good), "retake", "--shot", "a", data_dir=data_dir, url=database_url)

    assert approve.returncode == 0 and "edit v1 approved (producer status: done)" in approve.stdout
    assert refused.returncode == 2 and "needs a comment" in refused.stderr and "Traceback" not in refused.stderr
    assert farm.latest_edit(good).review is Review.APPROVED
