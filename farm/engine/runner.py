"""The library API behind ``farm render``, ``farm submit``, ``farm cancel`` and ``farm retry``.

Submitting writes a queued job; running a job connects to Ray and drives it with the Scheduler. Both
are separate so a job can be submitted from a laptop and driven on the cluster (or resumed after the
driver died) from nothing but the database.
"""

from __future__ import annotations

import logging
import os
import shlex
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from farm.avatar.manifest import ModelCatalog
from farm.db import transitions
from farm.db.queries import job_state
from farm.db.session import Database
from farm.db.states import JobState
from farm.edit.job_edit import DEFAULT_LOUDNESS_LUFS, JobEdit, apply_retakes, assemble_job
from farm.engine.scheduler import EngineEvent, EngineOptions, JobOutcome, Observer, Scheduler
from farm.plan import Plan, plan_shot_list
from farm.settings import Settings
from farm.shotlist.load import load_shot_list
from farm.shotlist.types import Quality


@dataclass(frozen=True)
class Submission:
    job_id: int
    plan: Plan


def submit_shot_list(
    db: Database,
    settings: Settings,
    path: Path,
    *,
    quality: Quality | None = None,
    priority: int = 0,
) -> Submission:
    """Validate, plan and record a job (queued); nothing renders yet."""
    catalog = ModelCatalog.for_settings(settings)
    shot_list = load_shot_list(path, catalog=catalog, max_shot_seconds=settings.max_shot_seconds)
    plan = plan_shot_list(
        shot_list, catalog, quality=quality, digest_memo=settings.data_dir / "cache" / "weights-digests.json"
    )
    tier = quality.value if quality else ",".join(sorted({task.quality.value for task in plan.tasks}))
    options = {
        "continuity": shot_list.continuity.to_json(),
        "title": f"{shot_list.project} {shot_list.episode}".strip(),
    }
    job_id = transitions.submit_job(
        db, plan, submitted_by=settings.user, priority=priority, quality=tier, options=options
    )
    return Submission(job_id, plan)


def connect_ray(settings: Settings) -> None:
    """Join the cluster at ``settings.ray_address``, or start Ray on this machine (loopback only)."""
    import ray

    if ray.is_initialized():
        return
    quiet = {"log_to_driver": False, "logging_level": logging.WARNING}
    # Ray announces its (default, kept) token authentication on every start; it's not news to a user.
    logging.getLogger("ray._private.authentication.authentication_token_setup").setLevel(logging.ERROR)
    if settings.ray_address:
        ray.init(address=settings.ray_address, **quiet)
        return
    # A local instance listens on loopback only; without this Ray binds the machine's public address.
    os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")
    ray.init(include_dashboard=False, _temp_dir=str(_ray_temp_dir()), **quiet)


def _ray_temp_dir() -> Path:
    # Ray's unix socket paths must stay under 107 bytes, so the session lives under /tmp, not the data dir.
    path = Path("/tmp") / f"farm-ray-{os.getuid()}"
    path.mkdir(parents=True, exist_ok=True)
    return path


def run_job(
    db: Database,
    settings: Settings,
    job_id: int,
    *,
    options: EngineOptions | None = None,
    observer: Observer | None = None,
) -> JobOutcome:
    """Drive job ``job_id`` to the end on the connected Ray cluster."""
    connect_ray(settings)
    scheduler = Scheduler(
        db,
        job_id,
        catalog=ModelCatalog.for_settings(settings),
        artifacts_root=settings.artifacts_dir,
        options=options or EngineOptions(),
        observer=observer,
        actor=f"driver@{os.uname().nodename}",
    )
    return scheduler.run()


@dataclass(frozen=True)
class RenderedJob:
    outcome: JobOutcome
    edits: tuple[JobEdit, ...]
    """Every edit version made, oldest first (more than one when continuity retakes ran)."""

    @property
    def edit(self) -> JobEdit | None:
        return self.edits[-1] if self.edits else None


def render_to_edit(
    db: Database,
    settings: Settings,
    job_id: int,
    *,
    options: EngineOptions | None = None,
    observer: Observer | None = None,
    loudness_lufs: float = DEFAULT_LOUDNESS_LUFS,
) -> RenderedJob:
    """Render a job, assemble and check the edit, and re-render what the checks' retake policy asks for.

    Each assembly is a new edit version; the loop ends when no check asks for a retake, or a shot has
    used up its retakes (``continuity.max_retakes``), or a render fails.
    """
    notify = observer or (lambda event: None)
    outcome = run_job(db, settings, job_id, options=options, observer=observer)
    edits: list[JobEdit] = []
    retakes_so_far: dict[str, int] = {}
    while outcome.state is JobState.DONE:
        notify(EngineEvent("message", message=f"assembling job {job_id}"))
        edit = assemble_job(db, settings, job_id, loudness_lufs=loudness_lufs, retake_attempts=retakes_so_far)
        edits.append(edit)
        retakes = edit.outcome.retakes.retakes
        if not retakes:
            break
        for retake in retakes:
            retakes_so_far[retake.shot_id] = retake.attempt
        queued = apply_retakes(db, settings, job_id, retakes, actor=f"retake@{os.uname().nodename}")
        notify(EngineEvent("message", message=f"edit v{edit.version}: retaking {', '.join(queued)}"))
        outcome = run_job(db, settings, job_id, options=options, observer=observer)
    return RenderedJob(outcome, tuple(edits))


def cancel(db: Database, job_id: int, *, actor: str) -> int:
    """Cancel a job: queued shots now; running shots as soon as its driver notices (within a second)."""
    return transitions.cancel_job(db, job_id, actor=actor)


def retry(db: Database, job_id: int, *, actor: str, shot_ids: list[str] | None = None) -> int:
    """Re-queue a job's failed (and cancelled) shots; returns how many."""
    return transitions.retry_job(db, job_id, actor=actor, shot_ids=shot_ids)


def start_detached_driver(settings: Settings, job_id: int, log_path: Path) -> int:
    """Run ``farm render --resume JOB`` in a new session, detached from this terminal; returns its pid.

    With a Ray address the driver still runs here but joins the cluster; ``submit_to_ray_jobs`` runs it
    on the cluster's head instead, so the submitting machine can go away.
    """
    log_path.parent.mkdir(parents=True, exist_ok=True)
    command = [sys.executable, "-m", "farm", "render", "--resume", str(job_id), *_settings_args(settings)]
    with log_path.open("ab") as log:
        process = subprocess.Popen(
            command, stdin=subprocess.DEVNULL, stdout=log, stderr=log, start_new_session=True, close_fds=True
        )
    return process.pid


def submit_to_ray_jobs(settings: Settings, job_id: int, dashboard_address: str) -> str:
    """Submit the driver as a Ray job on the cluster (needs the head's dashboard address, e.g. http://head:8265)."""
    from ray.job_submission import JobSubmissionClient

    client = JobSubmissionClient(dashboard_address)
    entrypoint = shlex.join(
        ["python", "-m", "farm", "render", "--resume", str(job_id), *_settings_args(settings, ray_address="auto")]
    )
    return client.submit_job(entrypoint=entrypoint, submission_id=f"farm-job-{job_id}-{os.getpid()}")


def _settings_args(settings: Settings, *, ray_address: str | None = None) -> list[str]:
    args = [
        "--data-dir",
        str(settings.data_dir),
        "--db",
        settings.database_url,
        "--models-dir",
        str(settings.models_dir),
    ]
    address = ray_address or settings.ray_address
    return [*args, "--address", address] if address else args


def require_job(db: Database, job_id: int) -> None:
    """Raise UnknownJob (a bad-input error naming the job) unless ``job_id`` exists."""
    job_state(db, job_id)
