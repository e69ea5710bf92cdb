"""Submitting a shot list: validate it, plan it, and record a queued job with one queued shot per task.

The shots' inputs (portraits, dialogue tracks) are copied into the data dir's input store here, and
each shot's spec names its copies (``ShotTask.inputs``): what renders is what was submitted.

This is where a plan becomes database records (``NewJob``, ``NewShot``): the database layer knows
nothing of plans or shot lists. A submit with an idempotency key that was seen before is answered with
the job it made, and its plan is read back from that job's shots: the shot list is not read again (it
may have changed, or gone), so a retried request can never make a second job or fail where the first
succeeded.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from farm.catalog import Quality
from farm.db.errors import IdempotencyKeyTaken
from farm.db.idempotency import IdempotencyClaim, keyed_job
from farm.db.jobs import NewJob, NewShot, job_record, submit_job
from farm.db.queries import shots_of_job
from farm.db.session import Database
from farm.jobs.planning import plan_file
from farm.media.snapshots import Snapshot, SnapshotStore
from farm.plan import Plan, ShotTask, with_input_copies
from farm.settings import Settings
from farm.shotlist.types import OutputSpec, ShotList


@dataclass(frozen=True)
class Submission:
    """A job just submitted: its id and the plan its shots came from.

    ``replayed``: the request repeated an earlier one's idempotency key, and this is that earlier job.
    """

    job_id: int
    plan: Plan
    replayed: bool = False


def submit_shot_list(
    db: Database,
    settings: Settings,
    path: Path,
    *,
    quality: Quality | None = None,
    priority: int = 0,
    submitted_by: str | None = None,
    idempotency_key: str | None = None,
    planned: tuple[ShotList, Plan] | None = None,
) -> Submission:
    """Validate, plan and record a job (queued); nothing renders yet.

    ``planned``: the shot list and plan ``plan_file`` already made of ``path`` (a caller that validates
    before it opens the database, so that a refused list creates nothing).

    ``submitted_by`` defaults to the settings' user. With ``idempotency_key``, a repeat of an earlier
    request (same key, same submitter, same path, quality and priority) returns that request's job, and
    the same key with another request raises IdempotencyConflict; neither writes anything.
    """
    by = submitted_by or settings.user
    claim = None
    if idempotency_key is not None:
        claim = IdempotencyClaim(idempotency_key, by, request_digest(path, quality, priority))
        earlier = keyed_job(db, claim)
        if earlier is not None:
            return replayed_submission(db, earlier)
    shot_list, plan = planned or plan_file(settings, path, quality=quality)
    plan = with_copied_inputs(plan, SnapshotStore(settings.inputs_dir))
    tiers = quality.value if quality else ",".join(sorted({task.quality.value for task in plan.tasks}))
    options = {
        "continuity": shot_list.continuity.to_json(),
        "title": f"{shot_list.project} {shot_list.episode}".strip(),
    }
    job, shots = job_records(plan, submitted_by=by, priority=priority, quality=tiers, options=options)
    try:
        return Submission(submit_job(db, job, shots, idempotency=claim), plan)
    except IdempotencyKeyTaken:  # a concurrent submit with the same key recorded its job first
        winner = keyed_job(db, claim) if claim is not None else None
        if winner is None:
            raise
        return replayed_submission(db, winner)


def with_copied_inputs(plan: Plan, store: SnapshotStore) -> Plan:
    """``plan`` with every shot's portraits and dialogue tracks copied into ``store``, each file once.

    The job's shots read these copies, so an artist saving over a portrait or a track after submitting
    changes nothing until the shot list is submitted again (whose plan then re-keys the shots it changes).
    """
    taken: dict[Path, Snapshot] = {}
    return replace(plan, tasks=tuple(with_input_copies(task, store, taken) for task in plan.tasks))


def request_digest(path: Path, quality: Quality | None, priority: int) -> str:
    """What makes two submits the same request: the shot list's absolute path, the quality and priority."""
    request = {"path": str(Path(path).resolve()), "quality": quality.value if quality else None, "priority": priority}
    return hashlib.sha256(json.dumps(request, sort_keys=True).encode()).hexdigest()


def replayed_submission(db: Database, job_id: int) -> Submission:
    """The Submission of a job recorded earlier, its plan rebuilt from the job's own shots."""
    job = job_record(db, job_id)
    tasks = tuple(ShotTask.from_json(shot.spec) for shot in shots_of_job(db, job_id))
    first = tasks[0]
    plan = Plan(
        shot_list=Path(job.shot_list_path),
        shot_list_sha256=job.shot_list_sha256,
        project=job.project,
        episode=job.episode,
        output=OutputSpec(fps=first.fps, width=first.width, height=first.height),
        tasks=tasks,
    )
    return Submission(job_id, plan, replayed=True)


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
