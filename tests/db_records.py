"""Test helpers that put plans and artifacts into a database the way the jobs layer does."""

from __future__ import annotations

from farm.db.jobs import submit_job
from farm.db.session import Database
from farm.jobs.submit import job_records
from farm.plan import Plan


def submit_plan(db: Database, plan: Plan, *, submitted_by: str, quality: str, priority: int = 0) -> int:
    """A queued job for ``plan`` (as ``farm submit`` records one, without planning it again)."""
    job, shots = job_records(plan, submitted_by=submitted_by, quality=quality, priority=priority)
    return submit_job(db, job, shots)
