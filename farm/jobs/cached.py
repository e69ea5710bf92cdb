"""A job whose every shot is already in the artifact store: done without Ray.

Starting a Ray cluster costs seconds before the first shot is even looked at, and a re-run of an
unchanged shot list has nothing to render. Before a driver connects to Ray it asks here: when every
queued shot of the job has an intact artifact (its file there at its recorded size, the scheduler's own
test, ``farm.engine.artifacts.intact_artifact``), the shots are recorded as cached and the job settles
into ``assembling``, all through the database's one state machine, as the scheduler would have done.
One miss and nothing is touched: the job renders on Ray as usual, and the scheduler serves the hits.
"""

from __future__ import annotations

import time

from farm.db.jobs import settle_job, transition_job
from farm.db.queries import job_state, shots_of_job
from farm.db.session import Database
from farm.db.shots import mark_cached
from farm.db.states import RENDERABLE_JOB_STATES, JobState, ShotState
from farm.engine.artifacts import intact_artifact
from farm.engine.messages import EngineEvent, EngineEventKind, JobOutcome, Observer


def drive_from_cache(db: Database, job_id: int, *, by: str, observer: Observer) -> JobOutcome | None:
    """Serve every queued shot of ``job_id`` from the cache and settle the job, or None (nothing
    changed) when a shot would have to render, one is running, or the job is not renderable."""
    started = time.monotonic()
    state = job_state(db, job_id)
    if state not in RENDERABLE_JOB_STATES:
        return None
    rows = shots_of_job(db, job_id)
    if any(row.state is ShotState.RUNNING for row in rows):
        return None
    queued = [row for row in rows if row.state is ShotState.QUEUED]
    hits = {}
    for row in queued:
        artifact = intact_artifact(db, row.cache_key)
        if artifact is None:
            return None
        hits[row.pk] = artifact
    observer(EngineEvent(EngineEventKind.JOB, total=len(rows), fraction=(len(rows) - len(queued)) / max(1, len(rows))))
    if state is not JobState.RENDERING:
        transition_job(db, job_id, JobState.RENDERING, by=by, expected={state},
                       message=f"{by}: every shot is in the cache, no render needed")  # fmt: skip
    cached = 0
    for row in queued:
        if mark_cached(db, row.pk, hits[row.pk].id, by=by):
            cached += 1
            observer(EngineEvent(EngineEventKind.CACHED, row.shot_id, 1.0, f"from cache {row.cache_key[:12]}"))
    after = settle_job(db, job_id, by=by)
    rows = shots_of_job(db, job_id)
    return JobOutcome(
        job_id=job_id,
        state=after,
        done=sum(1 for row in rows if row.state is ShotState.DONE),
        cached=sum(1 for row in rows if row.cached),
        failed=sum(1 for row in rows if row.state is ShotState.FAILED),
        cancelled=sum(1 for row in rows if row.state is ShotState.CANCELLED),
        wall_seconds=time.monotonic() - started,
    )
