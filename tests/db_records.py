"""Test helpers that put plans and artifacts into a database the way the jobs layer does."""

from __future__ import annotations

from pathlib import Path

from farm.db.jobs import submit_job, transition_job
from farm.db.kinds import ArtifactKind
from farm.db.products import ArtifactRecord, NewEdit, record_edit
from farm.db.queries import shots_of_job
from farm.db.session import Database
from farm.db.shots import finish_attempt, start_attempt
from farm.db.states import AttemptState, JobState, ShotState
from farm.jobs import Farm
from farm.jobs.submit import job_records
from farm.plan import Plan
from farm.settings import resolve_settings
from farm.verdicts import Verdict


def submit_plan(db: Database, plan: Plan, *, submitted_by: str, quality: str, priority: int = 0) -> int:
    """A queued job for ``plan`` (as ``farm submit`` records one, without planning it again)."""
    job, shots = job_records(plan, submitted_by=submitted_by, quality=quality, priority=priority)
    return submit_job(db, job, shots)


def make_farm(database_url: str, data_dir: Path) -> Farm:
    """A Farm on ``database_url`` with its artifacts, uploads and logs under ``data_dir``."""
    return Farm(resolve_settings(data_dir=data_dir, database_url=database_url))


def done_job(db: Database, plan: Plan, verdict: Verdict = Verdict.PASS) -> int:
    """A job whose three shots rendered and whose edit v1 has ``verdict``."""
    job_id = submit_plan(db, plan, submitted_by="editor", quality="preview")
    transition_job(db, job_id, JobState.RENDERING, by="driver")
    for task, shot in zip(plan.tasks, shots_of_job(db, job_id), strict=True):
        attempt = start_attempt(db, shot.pk, worker="w", node="n", device="cpu", by="driver")
        video = ArtifactRecord(task.cache_key, ArtifactKind.SHOT_VIDEO, f"/store/{task.shot_id}.mp4", 1, "a" * 64,
                               task.frames, 1.0)  # fmt: skip
        finish_attempt(db, attempt, outcome=AttemptState.SUCCEEDED, shot_state=ShotState.DONE, by="driver",
                       artifacts=[video], gpu_seconds=10.0)  # fmt: skip
    transition_job(db, job_id, JobState.CHECKING, by="driver")
    record_edit(db, job_id, NewEdit("/edits/v1.mp4", None, None, verdict, {}), by="driver")
    transition_job(db, job_id, JobState.DONE, by="driver")
    return job_id
