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
from farm.engine.scheduler import EngineOptions, JobOutcome, Observer, Scheduler
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
    catalog = ModelCatalog(settings.models_dir)
    shot_list = load_shot_list(path, catalog=catalog, max_shot_seconds=settings.max_shot_seconds)
    plan = plan_shot_list(
        shot_list, catalog, quality=quality, digest_memo=settings.data_dir / "cache" / "weights-digests.json"
    )
    tier = quality.value if quality else ",".join(sorted({task.quality.value for task in plan.tasks}))
    job_id = transitions.submit_job(db, plan, submitted_by=settings.user, priority=priority, quality=tier)
    return Submission(job_id, plan)


def connect_ray(settings: Settings) -> None:
    """Join the cluster at ``settings.ray_address``, or start Ray on this machine (loopback only)."""
    import ray

    if ray.is_initialized():
        return
    quiet = {"log_to_driver": False, "logging_level": logging.WARNING}
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
        catalog=ModelCatalog(settings.models_dir),
        artifacts_root=settings.artifacts_dir,
        options=options or EngineOptions(),
        observer=observer,
        actor=f"driver@{os.uname().nodename}",
    )
    return scheduler.run()


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
