"""The edit of a tracked job: shots and artifacts from the database in, a recorded edit version out.

The edit library (assemble, checks, timeline, report) knows nothing of the database; this module reads a
finished job's shots and their videos, builds a new version folder, and records it. It also turns a
retake plan into new shot recipes: a retaken shot gets a new seed (or a shot to continue), hence a new
cache key, and so does every shot that continues it, since keys chain.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass, replace
from pathlib import Path

from farm.avatar.manifest import ModelCatalog
from farm.db import transitions
from farm.db.queries import find_artifact, job_options, shots_of_job
from farm.db.session import Database
from farm.db.states import JobState, ShotState
from farm.edit.checks.base import Verdict
from farm.edit.pipeline import EditOutcome, build_edit, new_edit_dir
from farm.edit.retakes import Retake, RetakeMode
from farm.edit.timeline import edit_shots_from_tasks
from farm.engine.artifacts import SHOT_VIDEO
from farm.errors import UsageError
from farm.plan import ModelIdentities, ShotTask, task_cache_key
from farm.settings import Settings
from farm.shotlist.types import ContinuityConfig, OutputSpec

DEFAULT_LOUDNESS_LUFS = -16.0
DEFAULT_TRUE_PEAK_DB = -1.0


@dataclass(frozen=True)
class JobEdit:
    job_id: int
    edit_id: int
    version: int
    verdict: str
    outcome: EditOutcome


def job_edits_dir(settings: Settings, job_id: int) -> Path:
    return settings.edits_dir / f"job-{job_id}"


def assemble_job(
    db: Database,
    settings: Settings,
    job_id: int,
    *,
    loudness_lufs: float = DEFAULT_LOUDNESS_LUFS,
    true_peak_db: float = DEFAULT_TRUE_PEAK_DB,
    retake_attempts: dict[str, int] | None = None,
    actor: str = "farm",
) -> JobEdit:
    """Assemble every shot of a finished job into a new edit version, check it, and record it."""
    tasks = _finished_tasks(db, job_id)
    videos = {task.shot_id: _video_of(db, job_id, task) for task in tasks}
    options = job_options(db, job_id)
    continuity = ContinuityConfig.from_json(options.get("continuity", {}))
    first = tasks[0]
    output = OutputSpec(fps=first.fps, width=first.width, height=first.height)
    version, folder = new_edit_dir(job_edits_dir(settings, job_id))
    try:
        outcome = build_edit(
            edit_shots_from_tasks(tasks, videos),
            folder,
            output=output,
            continuity=continuity,
            loudness_lufs=loudness_lufs,
            true_peak_db=true_peak_db,
            retake_attempts=retake_attempts,
            title=options.get("title") or f"job {job_id}",
        )
        verdict = edit_verdict(outcome)
        edit_id, _ = transitions.record_edit(
            db,
            job_id,
            video_path=str(outcome.assembly.path),
            otio_path=str(outcome.timeline.otio),
            report_path=str(outcome.report.html),
            verdict=verdict,
            summary=_summary(outcome),
            actor=actor,
            version=version,
        )
    except BaseException:
        shutil.rmtree(folder, ignore_errors=True)  # a failed assembly leaves no half-written version
        raise
    return JobEdit(job_id, edit_id, version, verdict, outcome)


def edit_verdict(outcome: EditOutcome) -> str:
    verdicts = {result.verdict for result in outcome.results}
    if Verdict.FAIL in verdicts:
        return "fail"
    return "warn" if Verdict.WARN in verdicts else "pass"


def _summary(outcome: EditOutcome) -> dict[str, object]:
    flagged = [r for r in outcome.results if r.verdict in (Verdict.FAIL, Verdict.WARN)]
    return {
        "checks": len(outcome.results),
        "flagged": [{"check": r.check, "subject": r.subject.label, "verdict": r.verdict.value} for r in flagged],
        "retakes": [retake.shot_id for retake in outcome.retakes.retakes],
        "exhausted": list(outcome.retakes.exhausted),
        "edl": str(outcome.timeline.edl) if outcome.timeline.edl else None,
        "report_json": str(outcome.report.json),
    }


def _finished_tasks(db: Database, job_id: int) -> list[ShotTask]:
    rows = shots_of_job(db, job_id)
    unfinished = [row.shot_id for row in rows if row.state is not ShotState.DONE]
    if unfinished:
        listed = ", ".join(unfinished[:10]) + (" ..." if len(unfinished) > 10 else "")
        raise UsageError(
            f"job {job_id} has shots that are not done ({listed}); "
            f"render them first (farm render --resume {job_id}, or farm retry {job_id})"
        )
    return [ShotTask.from_json(row.spec) for row in rows]


def _video_of(db: Database, job_id: int, task: ShotTask) -> Path:
    artifact = find_artifact(db, task.cache_key, SHOT_VIDEO)
    if artifact is None or not Path(artifact.path).is_file():
        raise UsageError(
            f"job {job_id}: the video of shot {task.shot_id} is missing from the artifact store; "
            f"re-render it with farm retry {job_id} --shot {task.shot_id}, then farm render --resume {job_id}"
        )
    return Path(artifact.path)


def apply_retakes(
    db: Database, settings: Settings, job_id: int, retakes: tuple[Retake, ...], *, actor: str = "farm"
) -> list[str]:
    """Give each retaken shot its new recipe, re-key it and the shots that continue it, and re-queue them.

    Returns the ids of every shot queued again (the retakes and their continuations).
    """
    rows = {row.shot_id: row for row in shots_of_job(db, job_id)}
    tasks = {shot_id: ShotTask.from_json(row.spec) for shot_id, row in rows.items()}
    for retake in retakes:
        continues = retake.continues if retake.mode is RetakeMode.CONTINUE else tasks[retake.shot_id].continues
        tasks[retake.shot_id] = replace(tasks[retake.shot_id], seed=retake.seed, continues=continues)
    affected = _with_continuations({retake.shot_id for retake in retakes}, tasks)
    catalog = ModelCatalog.for_settings(settings)
    identities = ModelIdentities(catalog, settings.data_dir / "cache" / "weights-digests.json")
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
        transitions.retake_shot(
            db, rows[shot_id].pk, spec=new_spec, cache_key=keys[shot_id], actor=actor, reason=_reason(retakes, shot_id)
        )
    if changed:
        transitions.transition_job(
            db, job_id, JobState.QUEUED, actor=actor, message=f"retakes: {', '.join(changed)}",
            expected={JobState.DONE, JobState.FAILED},
        )  # fmt: skip
    return changed


def _with_continuations(shot_ids: set[str], tasks: dict[str, ShotTask]) -> set[str]:
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
