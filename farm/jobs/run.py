"""Driving a job: render its shots on Ray, then make its edit, and retake what the checks ask for.

Everything a driver does to a job happens under the job's driver lease (``DriverLease``), from the first
shot to the recorded edit, so a second driver waits and a dead one is noticed and taken over. The job's
phase says where a resumed driver picks up: queued, retaking or rendering jobs render; assembling or
checking jobs make their edit.

A job with nothing to render (every shot in the cache) never starts Ray (``farm.jobs.cached``), and its
edit re-uses an intact edit with the same content key when one exists (``assemble_job(reuse=True)``):
a re-run of an unchanged shot list is a few database reads. Ray and the scheduler are imported only when
a shot has to render.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from farm import defaults
from farm.catalog import ModelCatalog
from farm.db.events import record_event
from farm.db.kinds import EventKind
from farm.db.queries import job_state, shots_of_job
from farm.db.session import Database
from farm.db.states import RENDERABLE_JOB_STATES, JobState, ShotState
from farm.engine.messages import EngineEvent, EngineEventKind, JobOutcome, Observer, ignore_events
from farm.engine.policy import EngineOptions
from farm.engine.storage import StoragePause
from farm.errors import StorageFull
from farm.jobs.cached import drive_from_cache
from farm.jobs.debris import sweep_on_start
from farm.jobs.edit import JobEdit, assemble_job
from farm.jobs.lease import DriverLease
from farm.jobs.retake import apply_retakes
from farm.settings import Settings

if TYPE_CHECKING:
    from farm.engine.scheduler import Scheduler


@dataclass(frozen=True)
class RenderedJob:
    """What ``render_job`` came to: the job's state and shots at the end, every drive, every edit made."""

    outcome: JobOutcome
    """The whole run: the job's final state, its shots' final counts, shots rendered, total wall time."""
    drives: tuple[JobOutcome, ...]
    """Each rendering pass (more than one when continuity retakes ran), with its worker timings."""
    edits: tuple[JobEdit, ...]
    """Every edit version made, oldest first (more than one when continuity retakes ran)."""

    @property
    def edit(self) -> JobEdit | None:
        return self.edits[-1] if self.edits else None


def drive_job(
    db: Database,
    settings: Settings,
    job_id: int,
    *,
    options: EngineOptions | None = None,
    observer: Observer | None = None,
) -> JobOutcome:
    """Render the job's queued shots and stop there: the job is then assembling (every shot done),
    failed or cancelled, or queued again after Ctrl-C."""
    options = options or EngineOptions()
    with hold_lease(db, job_id, options, observer, artifacts_dir=settings.artifacts_dir) as lease:
        sweep_on_start(db, settings, observer or ignore_events, by=lease.by)
        return _drive(db, settings, job_id, options, observer, lease.by)


def render_job(
    db: Database,
    settings: Settings,
    job_id: int,
    *,
    options: EngineOptions | None = None,
    observer: Observer | None = None,
    loudness_lufs: float = defaults.LOUDNESS_LUFS,
) -> RenderedJob:
    """Drive a job to its edit: render, assemble and check, and re-render what the checks' retake policy
    asks for. Picks up wherever the job stands (a new job, a resumed one, one whose driver died while
    assembling).

    Each assembly is a new edit version; the loop ends when no check asks for a retake, or a shot has
    used up its retakes (``continuity.max_retakes``), or a render fails.
    """
    options = options or EngineOptions()
    notify = observer or ignore_events
    started = time.monotonic()
    drives: list[JobOutcome] = []
    edits: list[JobEdit] = []
    retakes_so_far: dict[str, int] = {}
    with hold_lease(db, job_id, options, notify, artifacts_dir=settings.artifacts_dir) as lease:
        sweep_on_start(db, settings, notify, by=lease.by)
        while True:
            state = job_state(db, job_id)
            if state in RENDERABLE_JOB_STATES:
                drive = _drive(db, settings, job_id, options, notify, lease.by)
                drives.append(drive)
                if drive.interrupted or drive.state is not JobState.ASSEMBLING:
                    break
            elif state in (JobState.ASSEMBLING, JobState.CHECKING):
                notify(EngineEvent(EngineEventKind.MESSAGE, message=f"assembling job {job_id}"))
                try:
                    edit = assemble_job(
                        db,
                        settings,
                        job_id,
                        loudness_lufs=loudness_lufs,
                        retake_attempts=retakes_so_far,
                        reuse=True,
                        by=lease.by,
                    )
                except StorageFull as full:
                    wait_for_room(db, job_id, full, notify, by=lease.by, check_seconds=options.progress_seconds)
                    continue
                edits.append(edit)
                retakes = edit.retakes
                if not retakes:
                    break
                retakes_so_far.update({retake.shot_id: retake.attempt for retake in retakes})
                queued = apply_retakes(db, settings, job_id, retakes, by=lease.by)
                message = f"edit v{edit.version}: retaking {', '.join(queued) or 'nothing (same recipes)'}"
                notify(EngineEvent(EngineEventKind.MESSAGE, message=message))
            else:
                if not drives and not edits:
                    notify(EngineEvent(EngineEventKind.MESSAGE, message=_nothing_to_do(job_id, state)))
                break
    return RenderedJob(_whole_run(db, job_id, drives, started), tuple(drives), tuple(edits))


def wait_for_room(
    db: Database, job_id: int, full: StorageFull, notify: Observer, *, by: str, check_seconds: float
) -> None:
    """Wait (holding the job's lease) until the disk that filled up has room again, saying so in the job's
    log when the wait starts and ends; a cancel ends the wait too."""
    pause = StoragePause(check_seconds=check_seconds)
    message = pause.begin(Path(full.path), full.needed, waiting="the edit waits", unit="the edit")
    record_event(db, job_id, kind=EventKind.JOB_HELD, by=by, message=message, data={"reason": "storage"})
    notify(EngineEvent(EngineEventKind.MESSAGE, message=f"{full}; {message}"))
    while (resumed := pause.room_again()) is None:
        if job_state(db, job_id) is JobState.CANCELLED:
            return
        time.sleep(check_seconds)
    record_event(db, job_id, kind=EventKind.JOB_HELD, by=by, message=resumed, data={"reason": "storage"})
    notify(EngineEvent(EngineEventKind.MESSAGE, message=resumed))


def hold_lease(
    db: Database,
    job_id: int,
    options: EngineOptions | None = None,
    observer: Observer | None = None,
    *,
    artifacts_dir: Path,
    by: str | None = None,
) -> DriverLease:
    """The job's driver lease, for ``with``: whatever works on a job (rendering it, making its edit) holds it.
    ``artifacts_dir`` is the store whose partial files of a dead driver's renders go as it takes over."""
    options = options or EngineOptions()
    return DriverLease(
        db,
        job_id,
        heartbeat_seconds=options.heartbeat_seconds,
        stale_after_seconds=options.stale_after_seconds,
        observer=observer or ignore_events,
        by=by,
        artifacts_dir=artifacts_dir,
    )


def _drive(
    db: Database, settings: Settings, job_id: int, options: EngineOptions, observer: Observer | None, by: str
) -> JobOutcome:
    from_cache = drive_from_cache(db, job_id, by=by, observer=observer or ignore_events)
    if from_cache is not None:
        return from_cache
    from farm.engine.cluster import connect_ray

    connect_ray(settings.ray_address)
    return new_scheduler(db, settings, options, observer, by).render_one(job_id)


def new_scheduler(
    db: Database, settings: Settings, options: EngineOptions, observer: Observer | None, by: str
) -> Scheduler:
    """The scheduler for ``settings``' farm: its models, artifact store and attempt logs."""
    from farm.engine.scheduler import Scheduler

    return Scheduler(
        db,
        catalog=ModelCatalog.for_settings(settings),
        artifacts_root=settings.artifacts_dir,
        options=options,
        observer=observer,
        by=by,
        logs_root=settings.logs_dir / "attempts",
        inputs_root=settings.inputs_dir,
    )


def _nothing_to_do(job_id: int, state: JobState) -> str:
    if state is JobState.DONE:
        return f"job {job_id} is done; farm assemble {job_id} makes a new edit version"
    return f"job {job_id} is {state}; nothing to render (farm retry {job_id} re-queues its shots)"


def _whole_run(db: Database, job_id: int, drives: list[JobOutcome], started: float) -> JobOutcome:
    rows = shots_of_job(db, job_id)
    states = [row.state for row in rows]
    return JobOutcome(
        job_id=job_id,
        state=job_state(db, job_id),
        done=states.count(ShotState.DONE),
        cached=sum(1 for row in rows if row.cached),
        rendered=sum(drive.rendered for drive in drives),
        failed=states.count(ShotState.FAILED),
        cancelled=states.count(ShotState.CANCELLED),
        interrupted=any(drive.interrupted for drive in drives),
        wall_seconds=time.monotonic() - started,
    )
