"""Continuity retakes of a job: a retaken shot gets a new recipe, hence a new cache key, and renders again.

A retake gives a shot a new seed (or a shot to continue); every shot that continues it changes key too,
since keys chain. The new keys are computed exactly as the planner computes them, so a retake's key is
the key a shot list asking for that seed would get (and hits the cache if it was ever rendered).
"""

from __future__ import annotations

from dataclasses import replace

from farm.catalog import ModelCatalog
from farm.db.queries import shots_of_job
from farm.db.session import Database
from farm.db.shots import retake_shot
from farm.edit.retakes import Retake, RetakeMode
from farm.plan import ModelIdentities, ShotTask, task_cache_key
from farm.settings import Settings


def apply_retakes(db: Database, settings: Settings, job_id: int, retakes: tuple[Retake, ...], *, by: str) -> list[str]:
    """Give each retaken shot its new recipe, re-key it and the shots that continue it, and re-queue them.

    Returns the ids of every shot queued again (the retakes and their continuations), in edit order.
    """
    rows = {row.shot_id: row for row in shots_of_job(db, job_id)}
    tasks = {shot_id: ShotTask.from_json(row.spec) for shot_id, row in rows.items()}
    for retake in retakes:
        continues = retake.continues if retake.mode is RetakeMode.CONTINUE else tasks[retake.shot_id].continues
        tasks[retake.shot_id] = replace(tasks[retake.shot_id], seed=retake.seed, continues=continues)
    affected = with_continuations({retake.shot_id for retake in retakes}, tasks)
    catalog = ModelCatalog.for_settings(settings)
    identities = ModelIdentities(catalog, settings.weights_digest_memo)
    keys = {shot_id: row.cache_key for shot_id, row in rows.items()}
    changed: list[str] = []
    for shot_id in sorted(affected, key=lambda sid: tasks[sid].order):
        task = tasks[shot_id]
        continues_key = keys[task.continues] if task.continues else None
        keys[shot_id] = task_cache_key(task, identities.identity(catalog.get(task.model)), continues_key)
        if keys[shot_id] == rows[shot_id].cache_key:
            continue
        changed.append(shot_id)
        new_spec = replace(task, cache_key=keys[shot_id]).to_json()
        retake_shot(
            db, rows[shot_id].pk, spec=new_spec, cache_key=keys[shot_id], by=by, reason=_reason(retakes, shot_id)
        )
    return changed


def with_continuations(shot_ids: set[str], tasks: dict[str, ShotTask]) -> set[str]:
    """``shot_ids`` and every shot that continues one of them, directly or through others."""
    affected = set(shot_ids)
    for shot_id in sorted(tasks, key=lambda sid: tasks[sid].order):
        if tasks[shot_id].continues in affected:
            affected.add(shot_id)
    return affected


def _reason(retakes: tuple[Retake, ...], shot_id: str) -> str:
    for retake in retakes:
        if retake.shot_id == shot_id:
            how = f"continuing {retake.continues}" if retake.mode is RetakeMode.CONTINUE else "new seed"
            return f"{', '.join(retake.checks)} check; retake {retake.attempt} with seed {retake.seed} ({how})"
    return "the shot it continues was retaken"
