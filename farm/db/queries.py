"""Reads for ``farm status``, ``farm events`` and the scheduler, each in one read-only snapshot.

Aggregates are computed in SQL (one grouped query per question, never a query per shot), and the rows
come back as frozen dataclasses. On SQLite a read never takes the write lock (deferred BEGIN in WAL
mode); on PostgreSQL MVCC gives the same, so a producer watching a job never slows its render.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Row, case, func, select

from farm.db.columns import seconds_between, utcnow
from farm.db.errors import UnknownJob
from farm.db.models import Artifact, Edit, Event, Job, Render, Shot
from farm.db.records import (
    ArtifactInfo,
    EditInfo,
    EventRecord,
    JobDetail,
    JobSummary,
    SceneRollup,
    ShotCounts,
    ShotRecord,
    ShotRow,
)
from farm.db.session import Database
from farm.db.states import FINISHED_JOB_STATES, AttemptState, JobState, ShotState

_JOB_COLUMNS = (
    Job.id,
    Job.project,
    Job.episode,
    Job.shot_list_path,
    Job.quality,
    Job.priority,
    Job.state,
    Job.submitted_by,
    Job.submitted_at,
    Job.started_at,
    Job.finished_at,
    Job.driver_id,
    Job.driver_heartbeat_at,
)


def _count_where(condition: Any) -> Any:
    return func.coalesce(func.sum(case((condition, 1), else_=0)), 0)


def _frames_where(condition: Any) -> Any:
    return func.coalesce(func.sum(case((condition, Shot.frames), else_=0)), 0)


def job_summaries(db: Database, limit: int = 20) -> tuple[JobSummary, ...]:
    """The ``limit`` most recent jobs, newest first, with their shot counts, GPU time and ETA."""
    with db.read() as connection:
        jobs = connection.execute(select(*_JOB_COLUMNS).order_by(Job.id.desc()).limit(limit)).all()
        ids = [job.id for job in jobs]
        counts = _shot_counts(connection, ids)
        speeds = _render_speeds(connection, ids)
    return tuple(_summary(job, *counts.get(job.id, (ShotCounts(), 0.0, 0.0)), speeds.get(job.id)) for job in jobs)


def _shot_counts(connection: Connection, job_ids: list[int]) -> dict[int, tuple[ShotCounts, float, float]]:
    """Per job: the shot counts, GPU seconds, and frames still to render (a running shot counts its
    unrendered part only)."""
    if not job_ids:
        return {}
    remaining = case(
        (Shot.state == ShotState.QUEUED, Shot.frames),
        (Shot.state == ShotState.RUNNING, Shot.frames * (1.0 - func.coalesce(Render.progress, 0.0))),
        else_=0,
    )
    statement = (
        select(
            Shot.job_id,
            func.count(),
            _count_where(Shot.state == ShotState.QUEUED),
            _count_where(Shot.state == ShotState.RUNNING),
            _count_where(Shot.state == ShotState.DONE),
            _count_where((Shot.state == ShotState.DONE) & Shot.cached),
            _count_where(Shot.state == ShotState.FAILED),
            _count_where(Shot.state == ShotState.CANCELLED),
            func.coalesce(func.sum(Shot.frames), 0),
            _frames_where(Shot.state == ShotState.DONE),
            func.coalesce(func.sum(Shot.gpu_seconds), 0.0),
            func.coalesce(func.sum(remaining), 0.0),
        )
        .select_from(Shot)
        .outerjoin(Render, Render.id == Shot.current_render_id)
        .where(Shot.job_id.in_(job_ids))
        .group_by(Shot.job_id)
    )
    result: dict[int, tuple[ShotCounts, float, float]] = {}
    for (
        job_id,
        total,
        queued,
        running,
        done,
        cached,
        failed,
        cancelled,
        frames,
        frames_done,
        gpu,
        left,
    ) in connection.execute(statement).all():
        counts = ShotCounts(
            total=total,
            queued=queued,
            running=running,
            done=done,
            cached=cached,
            failed=failed,
            cancelled=cancelled,
            frames_total=int(frames),
            frames_done=int(frames_done),
        )
        result[job_id] = (counts, float(gpu), float(left))
    return result


def _render_speeds(connection: Connection, job_ids: list[int]) -> dict[int, tuple[int, float]]:
    """Per job: frames and seconds of render time of its succeeded attempts (cache hits don't count)."""
    if not job_ids:
        return {}
    statement = (
        select(
            Shot.job_id,
            func.sum(Shot.frames),
            func.sum(seconds_between(Render.started_at, Render.finished_at)),
        )
        .select_from(Render)
        .join(Shot, Shot.id == Render.shot_id)
        .where(Shot.job_id.in_(job_ids), Render.state == AttemptState.SUCCEEDED)
        .group_by(Shot.job_id)
    )
    return {
        job_id: (int(frames or 0), float(seconds or 0.0)) for job_id, frames, seconds in connection.execute(statement)
    }


def _summary(
    job: Row[Any],
    counts: ShotCounts,
    gpu_seconds: float,
    frames_left: float,
    speed: tuple[int, float] | None,
) -> JobSummary:
    frames_rendered, render_seconds = speed or (0, 0.0)
    frames_per_second = frames_rendered / render_seconds if frames_rendered and render_seconds > 0 else None
    return JobSummary(
        id=job.id,
        project=job.project,
        episode=job.episode,
        shot_list_path=job.shot_list_path,
        quality=job.quality,
        priority=job.priority,
        state=job.state,
        submitted_by=job.submitted_by,
        submitted_at=job.submitted_at,
        started_at=job.started_at,
        finished_at=job.finished_at,
        driver_id=job.driver_id,
        driver_heartbeat_at=job.driver_heartbeat_at,
        shots=counts,
        gpu_seconds=gpu_seconds,
        render_seconds=render_seconds,
        frames_per_second=frames_per_second,
        eta_seconds=estimate_eta(job.state, frames_left, frames_per_second, counts.running),
    )


def estimate_eta(state: JobState, frames_left: float, frames_per_second: float | None, running: int) -> float | None:
    """Seconds until the job's remaining frames are rendered at the observed speed, by the attempts now
    running (at least one). None when nothing has been rendered yet to measure the speed by."""
    if state in FINISHED_JOB_STATES or frames_left <= 0:
        return 0.0
    if not frames_per_second:
        return None
    return frames_left / frames_per_second / max(running, 1)


def job_detail(db: Database, job_id: int) -> JobDetail:
    """Everything ``farm status JOB`` shows: the summary, a row per shot, a rollup per scene, the last edit."""
    with db.read() as connection:
        job = connection.execute(select(*_JOB_COLUMNS).where(Job.id == job_id)).one_or_none()
        if job is None:
            raise UnknownJob(f"job {job_id} is not in the database; `farm status` lists the jobs")
        now = utcnow()
        shots = _shot_rows(connection.execute(_shot_rows_statement(job_id)).all(), now)
        speeds = _render_speeds(connection, [job_id])
        edit = _latest_edit(connection, job_id)
    counts = _counts(shots)
    frames_left = sum(
        shot.frames * (1.0 - (shot.progress or 0.0)) if shot.state is ShotState.RUNNING else shot.frames
        for shot in shots
        if shot.state in (ShotState.QUEUED, ShotState.RUNNING)
    )
    summary = _summary(job, counts, sum(shot.gpu_seconds for shot in shots), frames_left, speeds.get(job_id))
    return JobDetail(job=summary, scenes=_scenes(shots), shots=shots, latest_edit=edit, as_of=now)


def _shot_rows_statement(job_id: int) -> Any:
    return (
        select(
            Shot.id,
            Shot.shot_id,
            Shot.scene_id,
            Shot.edit_order,
            Shot.state,
            Shot.cached,
            Shot.attempts,
            Shot.frames,
            Shot.cache_key,
            Shot.gpu_seconds,
            Shot.last_error,
            Shot.artifact_id,
            Render.id.label("render_id"),
            Render.state.label("attempt_state"),
            Render.worker,
            Render.node,
            Render.device,
            Render.started_at,
            Render.finished_at,
            Render.progress,
            Render.phase,
            Artifact.path.label("artifact_path"),
        )
        .select_from(Shot)
        .outerjoin(Render, Render.id == Shot.current_render_id)
        .outerjoin(Artifact, Artifact.id == Shot.artifact_id)
        .where(Shot.job_id == job_id)
        .order_by(Shot.edit_order)
    )


def _shot_rows(rows: Iterable[Row[Any]], now: datetime) -> tuple[ShotRow, ...]:
    """ShotRows from the status query's rows (unpacked positionally: this runs once per shot)."""
    shots = []
    for (
        pk,
        shot_id,
        scene_id,
        edit_order,
        state,
        cached,
        attempts,
        frames,
        cache_key,
        gpu_seconds,
        last_error,
        artifact_id,
        render_id,
        attempt_state,
        worker,
        node,
        device,
        started_at,
        finished_at,
        progress,
        phase,
        artifact_path,
    ) in rows:
        duration = None if started_at is None else ((finished_at or now) - started_at).total_seconds()
        shots.append(
            ShotRow(
                pk,
                shot_id,
                scene_id,
                edit_order,
                state,
                cached,
                attempts,
                frames,
                cache_key,
                gpu_seconds,
                last_error,
                render_id,
                attempt_state,
                worker,
                node,
                device,
                started_at,
                finished_at,
                duration,
                progress,
                phase,
                artifact_id,
                artifact_path,
            )
        )
    return tuple(shots)


def _counts(shots: Iterable[ShotRow]) -> ShotCounts:
    by_state: dict[ShotState, int] = defaultdict(int)
    total = cached = frames_total = frames_done = 0
    for shot in shots:
        by_state[shot.state] += 1
        total += 1
        frames_total += shot.frames
        if shot.state is ShotState.DONE:
            frames_done += shot.frames
            cached += shot.cached
    return ShotCounts(
        total=total,
        queued=by_state[ShotState.QUEUED],
        running=by_state[ShotState.RUNNING],
        done=by_state[ShotState.DONE],
        cached=cached,
        failed=by_state[ShotState.FAILED],
        cancelled=by_state[ShotState.CANCELLED],
        frames_total=frames_total,
        frames_done=frames_done,
    )


def _scenes(shots: tuple[ShotRow, ...]) -> tuple[SceneRollup, ...]:
    """Scenes in edit order (the order of their first shot)."""
    grouped: dict[str, list[ShotRow]] = {}
    for shot in shots:
        grouped.setdefault(shot.scene_id, []).append(shot)
    return tuple(
        SceneRollup(scene_id=scene, shots=_counts(members), gpu_seconds=sum(shot.gpu_seconds for shot in members))
        for scene, members in grouped.items()
    )


def _latest_edit(connection: Connection, job_id: int) -> EditInfo | None:
    row = connection.execute(
        select(Edit.__table__).where(Edit.job_id == job_id).order_by(Edit.version.desc()).limit(1)
    ).one_or_none()
    if row is None:
        return None
    return EditInfo(
        id=row.id,
        job_id=row.job_id,
        version=row.version,
        video_path=row.video_path,
        otio_path=row.otio_path,
        report_path=row.report_path,
        verdict=row.verdict,
        summary=row.summary,
        created_at=row.created_at,
    )


def _require_job(connection: Connection, job_id: int) -> None:
    if connection.execute(select(Job.id).where(Job.id == job_id)).scalar_one_or_none() is None:
        raise UnknownJob(f"job {job_id} is not in the database; `farm status` lists the jobs")


def shots_of_job(db: Database, job_id: int) -> tuple[ShotRecord, ...]:
    """The job's shots in edit order, with what a scheduler needs to dispatch them."""
    with db.read() as connection:
        _require_job(connection, job_id)
        rows = connection.execute(
            select(
                Shot.id,
                Shot.shot_id,
                Shot.scene_id,
                Shot.edit_order,
                Shot.state,
                Shot.cached,
                Shot.cache_key,
                Shot.frames,
                Shot.spec,
                Shot.attempts,
                Shot.current_render_id,
                Shot.artifact_id,
            )
            .where(Shot.job_id == job_id)
            .order_by(Shot.edit_order)
        ).all()
    return tuple(
        ShotRecord(
            pk=row.id,
            shot_id=row.shot_id,
            scene_id=row.scene_id,
            edit_order=row.edit_order,
            state=row.state,
            cached=bool(row.cached),
            cache_key=row.cache_key,
            frames=row.frames,
            spec=row.spec,
            attempts=row.attempts,
            current_render_id=row.current_render_id,
            artifact_id=row.artifact_id,
        )
        for row in rows
    )


def job_state(db: Database, job_id: int) -> JobState:
    """The job's state now (the driver polls this to notice a cancel)."""
    with db.read() as connection:
        state = connection.execute(select(Job.state).where(Job.id == job_id)).scalar_one_or_none()
    if state is None:
        raise UnknownJob(f"job {job_id} is not in the database; `farm status` lists the jobs")
    return state


def job_events(db: Database, job_id: int, *, limit: int | None = None) -> tuple[EventRecord, ...]:
    """The job's audit log, oldest first (the last ``limit`` events if given)."""
    statement = (
        select(
            Event.id,
            Event.at,
            Event.actor,
            Event.kind,
            Event.job_id,
            Event.shot_id.label("shot_pk"),
            Shot.shot_id,
            Event.render_id,
            Render.attempt_no,
            Event.old_state,
            Event.new_state,
            Event.message,
            Event.data,
        )
        .select_from(Event)
        .outerjoin(Shot, Shot.id == Event.shot_id)
        .outerjoin(Render, Render.id == Event.render_id)
        .where(Event.job_id == job_id)
    )
    newest_first = limit is not None
    statement = statement.order_by(Event.id.desc() if newest_first else Event.id).limit(limit)
    with db.read() as connection:
        _require_job(connection, job_id)
        rows = connection.execute(statement).all()
    if newest_first:
        rows = list(reversed(rows))
    return tuple(EventRecord(**row._asdict()) for row in rows)


def find_artifact(db: Database, cache_key: str, kind: str) -> ArtifactInfo | None:
    """The stored artifact for (cache_key, kind), or None if nothing with that key was ever recorded."""
    with db.read() as connection:
        row = connection.execute(
            select(Artifact.__table__).where(Artifact.cache_key == cache_key, Artifact.kind == kind)
        ).one_or_none()
    if row is None:
        return None
    return ArtifactInfo(
        id=row.id,
        cache_key=row.cache_key,
        kind=row.kind,
        path=row.path,
        bytes=row.bytes,
        sha256=row.sha256,
        frames=row.frames,
        duration=row.duration,
        created_at=row.created_at,
    )
