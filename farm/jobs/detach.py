"""Handing a job's driver off, so the submitting terminal can close: a detached local process, or a Ray job.

Both run ``farm render --resume JOB`` with this process's settings; the job itself is already in the
database, so the driver needs nothing else.
"""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
from pathlib import Path

from farm.settings import Settings


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
