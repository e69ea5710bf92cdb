"""Submitting a shot list: validate it, plan it, and record a queued job with one queued shot per task.

This is where a plan becomes database records (``NewJob``, ``NewShot``): the database layer knows
nothing of plans or shot lists.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from farm.catalog import ModelCatalog, Quality
from farm.db.jobs import NewJob, NewShot, submit_job
from farm.db.session import Database
from farm.plan import Plan, plan_shot_list
from farm.settings import Settings
from farm.shotlist.load import load_shot_list
from farm.shotlist.types import ShotList


@dataclass(frozen=True)
class Submission:
    """A job just submitted: its id and the plan its shots came from."""

    job_id: int
    plan: Plan


def plan_file(settings: Settings, path: Path, *, quality: Quality | None = None) -> tuple[ShotList, Plan]:
    """The validated shot list at ``path`` and its plan (ShotListError carrying every finding if invalid)."""
    catalog = ModelCatalog.for_settings(settings)
    shot_list = load_shot_list(Path(path), catalog=catalog, max_shot_seconds=settings.max_shot_seconds)
    plan = plan_shot_list(shot_list, catalog, quality=quality, digest_memo=settings.weights_digest_memo)
    return shot_list, plan


def submit_shot_list(
    db: Database, settings: Settings, path: Path, *, quality: Quality | None = None, priority: int = 0
) -> Submission:
    """Validate, plan and record a job (queued); nothing renders yet."""
    shot_list, plan = plan_file(settings, path, quality=quality)
    tiers = quality.value if quality else ",".join(sorted({task.quality.value for task in plan.tasks}))
    options = {
        "continuity": shot_list.continuity.to_json(),
        "title": f"{shot_list.project} {shot_list.episode}".strip(),
    }
    job, shots = job_records(plan, submitted_by=settings.user, priority=priority, quality=tiers, options=options)
    return Submission(submit_job(db, job, shots), plan)


def job_records(
    plan: Plan, *, submitted_by: str, quality: str, priority: int = 0, options: dict[str, Any] | None = None
) -> tuple[NewJob, list[NewShot]]:
    """The database's records of a job for ``plan``: the job, and one shot per task with the task as its spec."""
    job = NewJob(
        project=plan.project,
        episode=plan.episode,
        shot_list_path=str(plan.shot_list),
        shot_list_sha256=plan.shot_list_sha256,
        quality=quality,
        submitted_by=submitted_by,
        priority=priority,
        options=options or {},
    )
    shots = [
        NewShot(
            shot_id=task.shot_id,
            scene_id=task.scene_id,
            edit_order=task.order,
            spec=task.to_json(),
            cache_key=task.cache_key,
            frames=task.frames,
        )
        for task in plan.tasks
    ]
    return job, shots
