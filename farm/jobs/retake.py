"""Continuity retakes of a job: a retaken shot gets a new recipe, hence a new cache key, and renders again.

A retake gives a shot a new seed, a shot to continue, the reference portrait instead of the frames it
continued from, or a rung of its model's escalation ladder; every shot that continues it (and whose
model reads the continuation) changes key too, since keys chain. The new keys are computed exactly as
the planner computes them, so a retake's key is the key a shot list asking for that would get (and
hits the cache if it was ever rendered). Each retaken shot keeps the retake's reason.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

from farm.catalog import ModelCatalog
from farm.db.edits import Rekeyed
from farm.db.queries import shots_of_job
from farm.db.session import Database
from farm.db.shots import retake_shot
from farm.edit.retakes import Escalation, Retake, RetakeMode
from farm.plan import ModelIdentities, ShotTask, escalated, escalation_ladder, task_cache_key
from farm.settings import Settings


def apply_retakes(db: Database, settings: Settings, job_id: int, retakes: tuple[Retake, ...], *, by: str) -> list[str]:
    """Give each retaken shot its new recipe, re-key it and the shots that continue it, and re-queue them.

    Returns the ids of every shot queued again (the retakes and their continuations), in edit order.
    """
    changed = rekeyed_shots(db, settings, job_id, retakes)
    for _, shot in changed:
        retake_shot(db, shot.shot_pk, spec=shot.spec, cache_key=shot.cache_key, by=by, reason=shot.reason)
    return [shot_id for shot_id, _ in changed]


def rekeyed_shots(
    db: Database, settings: Settings, job_id: int, retakes: Sequence[Retake]
) -> list[tuple[str, Rekeyed]]:
    """The new recipe of each retaken shot and of every shot that continues one (whose key chains), in edit
    order; a shot whose key does not change (its model does not read what changed) is left out."""
    catalog = ModelCatalog.for_settings(settings)
    rows = {row.shot_id: row for row in shots_of_job(db, job_id)}
    tasks = {shot_id: ShotTask.from_json(row.spec) for shot_id, row in rows.items()}
    for retake in retakes:
        tasks[retake.shot_id] = retaken(tasks[retake.shot_id], retake, catalog)
    affected = with_continuations({retake.shot_id for retake in retakes}, tasks)
    identities = ModelIdentities(catalog, settings.weights_digest_memo)
    keys = {shot_id: row.cache_key for shot_id, row in rows.items()}
    changed: list[tuple[str, Rekeyed]] = []
    for shot_id in sorted(affected, key=lambda sid: tasks[sid].order):
        task = tasks[shot_id]
        continues_key = keys[task.continues] if task.continues else None
        identity = identities.identity(catalog.get(task.model), task.escalation)
        keys[shot_id] = task_cache_key(task, identity, continues_key)
        if keys[shot_id] == rows[shot_id].cache_key:
            continue
        spec = replace(task, cache_key=keys[shot_id]).to_json()
        changed.append((shot_id, Rekeyed(rows[shot_id].pk, spec, keys[shot_id], _reason(retakes, shot_id))))
    return changed


def retaken(task: ShotTask, retake: Retake, catalog: ModelCatalog) -> ShotTask:
    """``task`` with the recipe ``retake`` gives it (its cache key is not recomputed here)."""
    continues = retake.continues if retake.mode is RetakeMode.CONTINUE else task.continues
    task = replace(task, seed=retake.seed, continues=continues, from_reference=retake.from_reference)
    if retake.escalation > task.escalation:
        task = escalated(task, catalog.get(task.model), retake.escalation)
    return task


def escalations_of(tasks: Sequence[ShotTask], catalog: ModelCatalog) -> dict[str, tuple[Escalation, ...]]:
    """Per shot, the rungs of its model's escalation ladder that would still change its recipe."""
    return {
        task.shot_id: tuple(Escalation(level, name) for level, name in escalation_ladder(task, catalog.get(task.model)))
        for task in tasks
    }


def with_continuations(shot_ids: set[str], tasks: dict[str, ShotTask]) -> set[str]:
    """``shot_ids`` and every shot that continues one of them, directly or through others."""
    affected = set(shot_ids)
    for shot_id in sorted(tasks, key=lambda sid: tasks[sid].order):
        if tasks[shot_id].continues in affected:
            affected.add(shot_id)
    return affected


def _reason(retakes: Sequence[Retake], shot_id: str) -> str:
    for retake in retakes:
        if retake.shot_id == shot_id:
            return retake.reason or f"{', '.join(retake.checks)} check; retake {retake.attempt} ({retake.mode})"
    return "the shot it continues was retaken"
