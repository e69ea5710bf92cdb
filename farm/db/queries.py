"""Reads for ``farm status``, ``farm events``, the jobs layer and the scheduler, each in one read-only snapshot.

Aggregates are computed in SQL (one grouped query per question, never a query per shot), and the rows
come back as frozen dataclasses. On SQLite a read never takes the write lock (deferred BEGIN in WAL
mode); on PostgreSQL MVCC gives the same, so a producer watching a job never slows its render.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, Row, case, func, select

from farm.collector import collector_paused
from farm.db.columns import utcnow
from farm.db.errors import UnknownJob
from farm.db.eta import Remaining, costed_etas
from farm.db.kinds import ArtifactKind
from farm.db.records import (
    ArtifactInfo,
    EditInfo,
    EventPage,
    EventRecord,
    JobDetail,
    JobSummary,
    SceneRollup,
    ShotCounts,
    ShotRecord,
    ShotRow,
    field_names,
    from_values,
)
from farm.db.retry import transaction
from farm.db.session import Database
from farm.db.states import ACTIVE_JOB_STATES, FINISHED_JOB_STATES, JobState, ShotState
from farm.db.stored_paths import DataPaths
from farm.db.tables import Artifact, Edit, Event, Job, Render, Shot

_JOB_COLUMNS = (
    Job.c.id,
    Job.c.project,
    Job.c.episode,
    Job.c.shot_list_path,
    Job.c.quality,
    Job.c.priority,
    Job.c.state,
    Job.c.submitted_by,
    Job.c.submitted_at,
    Job.c.started_at,
    Job.c.finished_at,
    Job.c.driver_id,
    Job.c.driver_heartbeat_at,
)


def _jobs_with_newest_edit() -> Any:
    """The job columns and, beside them, the newest edit's version, verdict and review (NULL before the first
    edit): the producer's status needs all three, for the job list as for one job."""
    newest = select(Edit.c.job_id, func.max(Edit.c.version).label("version")).group_by(Edit.c.job_id).subquery()
    return (
        select(
            *_JOB_COLUMNS,
            Edit.c.version.label("edit_version"),
            Edit.c.verdict.label("edit_verdict"),
            Edit.c.review.label("edit_review"),
        )
        .select_from(Job)
        .outerjoin(newest, newest.c.job_id == Job.c.id)
        .outerjoin(Edit, (Edit.c.job_id == Job.c.id) & (Edit.c.version == newest.c.version))
    )


def _count_where(condition: Any) -> Any:
    return func.coalesce(func.sum(case((condition, 1), else_=0)), 0)


def _frames_where(condition: Any) -> Any:
    return func.coalesce(func.sum(case((condition, Shot.c.frames), else_=0)), 0)


@transaction
def job_summaries(db: Database, limit: int = 20) -> tuple[JobSummary, ...]:
    """The ``limit`` most recent jobs, newest first, with their shot counts, GPU time and ETA."""
    with db.read() as connection:
        jobs = connection.execute(_jobs_with_newest_edit().order_by(Job.c.id.desc()).limit(limit)).all()
        ids = [job.id for job in jobs]
        totals = _shot_totals(connection, Shot.c.job_id, Shot.c.job_id.in_(ids)) if ids else {}
        etas = costed_etas(connection, _remaining(jobs, totals))
    return tuple(_summary(job, totals.get(job.id, _Totals()), etas.get(job.id)) for job in jobs)


def _remaining(jobs: Iterable[Row[Any]], totals: dict[Any, _Totals]) -> dict[int, Remaining]:
    """What the unfinished jobs have left, for their costed ETA."""
    return {
        job.id: Remaining(part.counts.queued + part.counts.running, part.frames_left)
        for job in jobs
        if job.state not in FINISHED_JOB_STATES and (part := totals.get(job.id)) is not None
    }


@dataclass(frozen=True)
class _Totals:
    counts: ShotCounts = field(default_factory=ShotCounts)
    gpu_seconds: float = 0.0
    frames_left: float = 0.0
    """Frames still to render: queued shots whole, running shots by the part their attempt has not done."""
    frames_rendered: int = 0
    render_seconds: float = 0.0
    """Frames of the shots rendered (not cached) and the time their attempts took: the observed speed."""
    first_order: int = 0


def _shot_totals(connection: Connection, group: Any, where: Any) -> dict[Any, _Totals]:
    """Shot counts per state, frames, GPU time and frames left, per value of ``group``, in one query."""
    running_progress = (
        select(func.coalesce(Render.c.progress, 0.0)).where(Render.c.id == Shot.c.current_render_id).scalar_subquery()
    )
    frames_left = case(
        (Shot.c.state == ShotState.QUEUED, Shot.c.frames),
        (Shot.c.state == ShotState.RUNNING, Shot.c.frames * (1.0 - func.coalesce(running_progress, 0.0))),
        else_=0,
    )
    rendered = (Shot.c.state == ShotState.DONE) & ~Shot.c.cached
    statement = (
        select(
            group,
            func.count(),
            _count_where(Shot.c.state == ShotState.QUEUED),
            _count_where(Shot.c.state == ShotState.RUNNING),
            _count_where(Shot.c.state == ShotState.DONE),
            _count_where((Shot.c.state == ShotState.DONE) & Shot.c.cached),
            _count_where(Shot.c.state == ShotState.FAILED),
            _count_where(Shot.c.state == ShotState.CANCELLED),
            func.coalesce(func.sum(Shot.c.frames), 0),
            _frames_where(Shot.c.state == ShotState.DONE),
            func.coalesce(func.sum(Shot.c.gpu_seconds), 0.0),
            func.coalesce(func.sum(frames_left), 0.0),
            _frames_where(rendered),
            func.coalesce(func.sum(case((rendered, Shot.c.render_seconds), else_=0.0)), 0.0),
            func.min(Shot.c.edit_order),
        )
        .where(where)
        .group_by(group)
    )
    totals: dict[Any, _Totals] = {}
    for (
        key,
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
        frames_rendered,
        render_seconds,
        first,
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
        totals[key] = _Totals(counts, float(gpu), float(left), int(frames_rendered), float(render_seconds), first)
    return totals


def _sum_totals(parts: Iterable[_Totals]) -> _Totals:
    parts = list(parts)
    counts = ShotCounts(
        **{name: sum(getattr(part.counts, name) for part in parts) for name in ShotCounts.__dataclass_fields__}
    )
    return _Totals(
        counts,
        gpu_seconds=sum(part.gpu_seconds for part in parts),
        frames_left=sum(part.frames_left for part in parts),
        frames_rendered=sum(part.frames_rendered for part in parts),
        render_seconds=sum(part.render_seconds for part in parts),
    )


def _summary(job: Row[Any], totals: _Totals, costed_eta: float | None = None) -> JobSummary:
    """``costed_eta``: the ETA from the learned costs (``farm.db.eta``); without it, the observed speed's."""
    frames_rendered, render_seconds = totals.frames_rendered, totals.render_seconds
    frames_per_second = frames_rendered / render_seconds if frames_rendered and render_seconds > 0 else None
    eta = estimate_eta(job.state, totals.frames_left, frames_per_second, totals.counts.running)
    if costed_eta is not None and eta != 0.0:
        eta = costed_eta
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
        shots=totals.counts,
        gpu_seconds=totals.gpu_seconds,
        render_seconds=render_seconds,
        frames_per_second=frames_per_second,
        eta_seconds=eta,
        edit_version=job.edit_version,
        edit_verdict=job.edit_verdict,
        edit_review=job.edit_review,
    )


def estimate_eta(state: JobState, frames_left: float, frames_per_second: float | None, running: int) -> float | None:
    """Seconds until the job's remaining frames are rendered at the observed speed, by the attempts now
    running (at least one). None when nothing has been rendered yet to measure the speed by."""
    if state in FINISHED_JOB_STATES or frames_left <= 0:
        return 0.0
    if not frames_per_second:
        return None
    return frames_left / frames_per_second / max(running, 1)


@transaction
def job_detail(
    db: Database,
    job_id: int,
    *,
    shot_states: Iterable[ShotState] | None = None,
    all_shots_up_to: int = 0,
) -> JobDetail:
    """Everything ``farm status JOB`` shows: the job's summary, a rollup per scene, the failed shots, the
    latest edit, and a row per shot, for every shot or (``shot_states``) those in the given states.

    Counts, rollups and the ETA are aggregated in SQL, so a status of a big job that lists only some of
    its shots costs little however many shots it has. A job of at most ``all_shots_up_to`` shots lists
    them all whatever ``shot_states`` says (a small job is read whole).
    """
    wanted = frozenset(shot_states) if shot_states is not None else None
    with collector_paused(), db.read() as connection:
        job = connection.execute(_jobs_with_newest_edit().where(Job.c.id == job_id)).one_or_none()
        if job is None:
            raise UnknownJob(f"job {job_id} is not in the database; `farm status` lists the jobs")
        now = utcnow()
        by_scene = _shot_totals(connection, Shot.c.scene_id, Shot.c.job_id == job_id)
        totals = _sum_totals(by_scene.values())
        if wanted is not None and totals.counts.total <= all_shots_up_to:
            wanted = None
        _plan_serially(connection)
        shots = _shot_rows(connection.execute(_shot_rows_statement(job_id, wanted)).all(), now, db.paths)
        if wanted is None or ShotState.FAILED in wanted:
            failures = tuple(shot for shot in shots if shot.state is ShotState.FAILED)
        else:
            failed_only = _shot_rows_statement(job_id, frozenset({ShotState.FAILED}))
            failures = _shot_rows(connection.execute(failed_only).all(), now, db.paths)
        edit = _latest_edit(connection, job_id, db.paths)
        etas = costed_etas(connection, _remaining([job], {job.id: totals}))
    scenes = tuple(
        SceneRollup(scene_id=scene, shots=part.counts, gpu_seconds=part.gpu_seconds)
        for scene, part in sorted(by_scene.items(), key=lambda item: item[1].first_order)
    )
    return JobDetail(
        job=_summary(job, totals, etas.get(job_id)),
        scenes=scenes,
        shots=shots,
        failures=failures,
        shot_states=wanted,
        latest_edit=edit,
        as_of=now,
    )


def _plan_serially(connection: Connection) -> None:
    """No parallel workers for the rest of this read on PostgreSQL.

    The listing of a big job is a hash join of a few thousand pages; PostgreSQL plans it with parallel
    workers, whose start-up costs more than they save: 77 ms against 38 ms serially for 10,000 shots on
    the bench's server. A status read waits on latency, never on a scan big enough to repay the workers.
    """
    if connection.dialect.name == "postgresql":
        connection.exec_driver_sql("SET LOCAL max_parallel_workers_per_gather = 0")


def _shot_rows_statement(job_id: int, states: frozenset[ShotState] | None) -> Any:
    statement = (
        select(
            Shot.c.id,
            Shot.c.shot_id,
            Shot.c.scene_id,
            Shot.c.edit_order,
            Shot.c.state,
            Shot.c.cached,
            Shot.c.attempts,
            Shot.c.frames,
            Shot.c.cache_key,
            Shot.c.gpu_seconds,
            Shot.c.last_error,
            Render.c.id,
            Render.c.state,
            Render.c.worker,
            Render.c.node,
            Render.c.device,
            Render.c.started_at,
            Render.c.finished_at,
            Render.c.progress,
            Render.c.phase,
            Shot.c.artifact_id,
            Artifact.c.path,
            Render.c.timings,
            Render.c.log_path,
            Shot.c.retake_reason,
        )
        .select_from(Shot)
        .outerjoin(Render, Render.c.id == Shot.c.current_render_id)
        .outerjoin(Artifact, Artifact.c.id == Shot.c.artifact_id)
        .where(Shot.c.job_id == job_id)
        .order_by(Shot.c.edit_order)
    )
    if states is not None:
        statement = statement.where(Shot.c.state.in_(sorted(states)))
    return statement


_SHOT_ROW_FIELDS = field_names(ShotRow)


def _shot_rows(rows: Iterable[Row[Any]], now: datetime, paths: DataPaths) -> tuple[ShotRow, ...]:
    """ShotRows from the status query's rows, which hold ShotRow's fields in order but the duration."""
    shots = []
    for row in rows:
        started_at, finished_at = row[16], row[17]
        duration = None if started_at is None else ((finished_at or now) - started_at).total_seconds()
        values = paths.resolve_row(_SHOT_ROW_FIELDS, (*row[:18], duration, *row[18:]))
        shots.append(from_values(ShotRow, _SHOT_ROW_FIELDS, values))
    return tuple(shots)


_EDIT_FIELDS = field_names(EditInfo)
_ARTIFACT_FIELDS = field_names(ArtifactInfo)


@transaction
def latest_edit(db: Database, job_id: int) -> EditInfo | None:
    """The job's newest edit version, or None before its first assembly."""
    with db.read() as connection:
        _require_job(connection, job_id)
        return _latest_edit(connection, job_id, db.paths)


def _latest_edit(connection: Connection, job_id: int, paths: DataPaths) -> EditInfo | None:
    row = connection.execute(
        select(*(Edit.c[name] for name in _EDIT_FIELDS))
        .where(Edit.c.job_id == job_id)
        .order_by(Edit.c.version.desc())
        .limit(1)
    ).one_or_none()
    return None if row is None else from_values(EditInfo, _EDIT_FIELDS, paths.resolve_row(_EDIT_FIELDS, row))


def _require_job(connection: Connection, job_id: int) -> None:
    if connection.execute(select(Job.c.id).where(Job.c.id == job_id)).scalar_one_or_none() is None:
        raise UnknownJob(f"job {job_id} is not in the database; `farm status` lists the jobs")


@transaction
def shots_of_job(db: Database, job_id: int, *, only: str | None = None) -> tuple[ShotRecord, ...]:
    """The job's shots in edit order (or only the shot ``only``), with what a scheduler needs to dispatch them."""
    with db.read() as connection:
        _require_job(connection, job_id)
        rows = connection.execute(
            select(
                Shot.c.id,
                Shot.c.shot_id,
                Shot.c.scene_id,
                Shot.c.edit_order,
                Shot.c.state,
                Shot.c.cached,
                Shot.c.cache_key,
                Shot.c.frames,
                Shot.c.spec,
                Shot.c.attempts,
                Shot.c.current_render_id,
                Shot.c.artifact_id,
            )
            .where(Shot.c.job_id == job_id, *([Shot.c.shot_id == only] if only is not None else []))
            .order_by(Shot.c.edit_order)
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


@transaction
def job_state(db: Database, job_id: int) -> JobState:
    """The job's state now (the driver polls this to notice a cancel)."""
    with db.read() as connection:
        state = connection.execute(select(Job.c.state).where(Job.c.id == job_id)).scalar_one_or_none()
    if state is None:
        raise UnknownJob(f"job {job_id} is not in the database; `farm status` lists the jobs")
    return state


@transaction
def higher_priority_jobs(db: Database, job_id: int, *, stale_after: float) -> tuple[int, ...]:
    """Jobs with a higher priority than ``job_id`` that are being driven now (a live driver heartbeat).

    A job that was submitted but has no driver does not count: it would hold back lower jobs forever.
    """
    me = select(Job.c.priority).where(Job.c.id == job_id).scalar_subquery()
    fresh = utcnow() - timedelta(seconds=stale_after)
    with db.read() as connection:
        rows = connection.execute(
            select(Job.c.id)
            .where(
                Job.c.priority > me,
                Job.c.state.in_(sorted({JobState.QUEUED, *ACTIVE_JOB_STATES})),
                Job.c.driver_heartbeat_at.is_not(None),
                Job.c.driver_heartbeat_at > fresh,
            )
            .order_by(Job.c.priority.desc(), Job.c.id)
        ).scalars()
        return tuple(rows)


@transaction
def job_options(db: Database, job_id: int) -> dict[str, Any]:
    """What the job was submitted with beyond its shots (continuity settings, title, ...)."""
    with db.read() as connection:
        options = connection.execute(select(Job.c.options).where(Job.c.id == job_id)).one_or_none()
    if options is None:
        raise UnknownJob(f"job {job_id} is not in the database; `farm status` lists the jobs")
    return dict(options[0] or {})


_EVENT_FIELDS = field_names(EventRecord)


def _events_statement(job_id: int) -> Any:
    """The job's events as EventRecord's fields, with the editor's shot id and the attempt number joined in."""
    return (
        select(
            Event.c.id,
            Event.c.at,
            Event.c.changed_by,
            Event.c.kind,
            Event.c.job_id,
            Event.c.shot_id.label("shot_pk"),
            Shot.c.shot_id,
            Event.c.render_id,
            Render.c.attempt_no,
            Event.c.old_state,
            Event.c.new_state,
            Event.c.message,
            Event.c.data,
        )
        .select_from(Event)
        .outerjoin(Shot, Shot.c.id == Event.c.shot_id)
        .outerjoin(Render, Render.c.id == Event.c.render_id)
        .where(Event.c.job_id == job_id)
    )


@transaction
def job_events(db: Database, job_id: int, *, limit: int | None = None) -> tuple[EventRecord, ...]:
    """The job's audit log, oldest first (the last ``limit`` events if given)."""
    newest_first = limit is not None
    statement = _events_statement(job_id).order_by(Event.c.id.desc() if newest_first else Event.c.id).limit(limit)
    with collector_paused():
        with db.read() as connection:
            _require_job(connection, job_id)
            rows = connection.execute(statement).all()
        if newest_first:
            rows = list(reversed(rows))
        return tuple(from_values(EventRecord, _EVENT_FIELDS, row) for row in rows)


@transaction
def events_since(db: Database, job_id: int, *, after: int = 0, limit: int = 500) -> EventPage:
    """Up to ``limit`` of the job's events with an id above ``after``, oldest first, and the job's state,
    read in one snapshot (a stream that resumes from the last id it sent misses nothing and repeats nothing).
    """
    statement = _events_statement(job_id).where(Event.c.id > after).order_by(Event.c.id).limit(limit)
    with db.read() as connection:
        state = connection.execute(select(Job.c.state).where(Job.c.id == job_id)).scalar_one_or_none()
        if state is None:
            raise UnknownJob(f"job {job_id} is not in the database; `farm status` lists the jobs")
        rows = connection.execute(statement).all()
    return EventPage(tuple(from_values(EventRecord, _EVENT_FIELDS, row) for row in rows), state)


_KEYS_PER_QUERY = 500
"""Cache keys asked for in one ``IN (...)``: well under every backend's limit on bound parameters."""


@transaction
def find_artifacts(db: Database, cache_keys: Iterable[str], kind: ArtifactKind) -> dict[str, ArtifactInfo]:
    """The stored artifacts of ``cache_keys`` that were ever recorded, by key, read in one transaction: a
    10,000-shot plan asks about all its keys at once, which one ``find_artifact`` each would make 10,000."""
    keys = list(dict.fromkeys(cache_keys))
    columns = [Artifact.c[name] for name in _ARTIFACT_FIELDS]
    found: dict[str, ArtifactInfo] = {}
    with db.read() as connection:
        for first in range(0, len(keys), _KEYS_PER_QUERY):
            chunk = keys[first : first + _KEYS_PER_QUERY]
            statement = select(*columns).where(Artifact.c.cache_key.in_(chunk), Artifact.c.kind == kind)
            for row in connection.execute(statement):
                record = from_values(ArtifactInfo, _ARTIFACT_FIELDS, db.paths.resolve_row(_ARTIFACT_FIELDS, row))
                found[record.cache_key] = record
    return found


@transaction
def find_artifact(db: Database, cache_key: str, kind: ArtifactKind) -> ArtifactInfo | None:
    """The stored artifact for (cache_key, kind), or None if nothing with that key was ever recorded."""
    with db.read() as connection:
        row = connection.execute(
            select(*(Artifact.c[name] for name in _ARTIFACT_FIELDS)).where(
                Artifact.c.cache_key == cache_key, Artifact.c.kind == kind
            )
        ).one_or_none()
    return (
        None
        if row is None
        else from_values(ArtifactInfo, _ARTIFACT_FIELDS, db.paths.resolve_row(_ARTIFACT_FIELDS, row))
    )
