"""Handing a job's driver off, so the submitting terminal can close: a detached local process, or a Ray job.

Both run ``farm render --resume JOB`` with this process's settings; the job itself is already in the
database, so the driver needs nothing else. The driver's command line is public (``ps`` on this machine,
the job's entrypoint on the Ray dashboard), so it names the database without its password; the full URL
travels in the driver's environment (FARM_DATABASE_URL), which its ``--db`` takes the password from.
"""

from __future__ import annotations

import os
import random
import re
import shlex
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from farm.errors import UsageError
from farm.settings import Settings, child_environment, secret_environment, without_password

AGENT_WAIT_SECONDS = 60.0
"""How long a submit waits out a head whose job agent is still starting (Ray: "No available agent to submit
job, please try again later"), as on a head that has just come up."""


REACH_TIMEOUT_SECONDS = 3.0
"""How long to try the dashboard's port before saying the head cannot be reached."""

_EXAMPLE = "http://head:8265"


class DriverNotStarted(UsageError):
    """The cluster did not take the job's driver; the job is not left queued for a driver that never comes."""


@dataclass(frozen=True)
class DriverCommand:
    """A driver's command line, safe to show anyone: it holds no password."""

    argv: tuple[str, ...]

    def __str__(self) -> str:
        return shlex.join(self.argv)


def driver_command(settings: Settings, job_id: int, *, python: str, ray_address: str | None = None) -> DriverCommand:
    """``python -m farm render --resume JOB`` with ``settings`` as flags; ``ray_address`` overrides theirs."""
    args = [
        python,
        "-m",
        "farm",
        "render",
        "--resume",
        str(job_id),
        "--data-dir",
        str(settings.data_dir),
        "--db",
        without_password(settings.database_url),
        "--models-dir",
        str(settings.models_dir),
    ]
    address = ray_address or settings.ray_address
    return DriverCommand(tuple([*args, "--address", address] if address else args))


def start_detached_driver(settings: Settings, job_id: int, log_path: Path) -> int:
    """Run ``farm render --resume JOB`` in a new session, detached from this terminal; returns its pid.

    With a Ray address the driver still runs here but joins the cluster; ``submit_to_ray_jobs`` runs it
    on the cluster's head instead, so the submitting machine can go away.
    """
    log_path.parent.mkdir(parents=True, exist_ok=True)
    command = driver_command(settings, job_id, python=sys.executable)
    with log_path.open("ab") as log:
        process = subprocess.Popen(
            command.argv,
            env=child_environment(settings),
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=log,
            start_new_session=True,
            close_fds=True,
        )
    return process.pid


def ray_job_entrypoint(settings: Settings, job_id: int) -> str:
    """The shell command a Ray job runs on the head: the driver, joining the cluster it runs in."""
    return str(driver_command(settings, job_id, python="python", ray_address="auto"))


def ray_job_runtime_env(settings: Settings) -> dict[str, Any]:
    """The Ray job's runtime environment: the variables that carry the database password to the driver.

    Ray keeps a job's runtime_env in its job info (``ray job list`` prints it), so whoever reaches the
    dashboard can read it; but whoever reaches the dashboard can already run any code on the cluster. The
    entrypoint, unlike it, is also a command line on the head, in ``ps`` for every account there.
    """
    return {"env_vars": secret_environment(settings)}


def check_dashboard_reachable(dashboard_address: str) -> None:
    """DriverNotStarted unless the dashboard's host and port accept a connection within a few seconds:
    checked before a job is recorded, so a submit to a head that is down (or a mistyped address) leaves
    no job behind."""
    url = urlsplit(dashboard_address if "://" in dashboard_address else f"http://{dashboard_address}")
    try:
        port = url.port or (443 if url.scheme == "https" else 80)
    except ValueError:
        port = None
    if not url.hostname or port is None:
        raise DriverNotStarted(f"--dashboard {dashboard_address}: give the head's dashboard as a URL, e.g. {_EXAMPLE}")
    try:
        with socket.create_connection((url.hostname, port), timeout=REACH_TIMEOUT_SECONDS):
            return
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        raise DriverNotStarted(
            f"--dashboard {dashboard_address}: cannot reach the head's dashboard ({reason}); check the address "
            f"(e.g. {_EXAMPLE}) and that the head is up; no job was recorded"
        ) from exc


def submit_to_ray_jobs(
    settings: Settings, job_id: int, dashboard_address: str, *, wait_seconds: float = AGENT_WAIT_SECONDS
) -> str:
    """Submit the driver as a Ray job on the cluster (needs the head's dashboard address, e.g. http://head:8265)."""
    from ray.job_submission import JobSubmissionClient

    submission_id = f"farm-job-{job_id}-{os.getpid()}"
    deadline = time.monotonic() + wait_seconds
    delay, tried = 0.5, False
    while True:
        try:
            client = JobSubmissionClient(dashboard_address)
            return client.submit_job(
                entrypoint=ray_job_entrypoint(settings, job_id),
                runtime_env=ray_job_runtime_env(settings),
                submission_id=submission_id,
            )
        except (OSError, RuntimeError) as exc:  # requests' errors are OSErrors; Ray's answers RuntimeErrors
            reason = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
            if tried and "already exists" in reason:  # an earlier try reached the head after all
                return submission_id
            if not _transient(exc, reason) or time.monotonic() + delay > deadline:
                raise DriverNotStarted(_not_started(dashboard_address, reason, wait_seconds)) from exc
            tried = True
            time.sleep(delay * random.uniform(0.8, 1.2))
            delay = min(delay * 2, 5.0)


_TRANSIENT_STATUS = re.compile(r"status code (502|503|504)\b")
"""The gateway answers of a head restarting or of a proxy before it: the same request may succeed later,
unlike a 500 (Ray's answer to a job it refuses, such as a runtime_env it cannot set up) or a 4xx."""


def _transient(exc: BaseException, reason: str) -> bool:
    """Whether asking again may succeed: the job agent still starting, a gateway error, or a connection
    lost, reset or timed out (the dashboard answered the reachability check just before, so a head that
    drops a connection now is restarting or overloaded). Asking again is safe because every try names the
    same submission id: a try that reached the head after all is answered "already exists"."""
    return isinstance(exc, OSError) or _agent_starting(reason) or bool(_TRANSIENT_STATUS.search(reason))


def _agent_starting(reason: str) -> bool:
    return "No available agent" in reason or "try again later" in reason


def _not_started(dashboard_address: str, reason: str, waited: float) -> str:
    if _agent_starting(reason):
        advice = f"the head's job agent was still not ready after {waited:.0f} s; check the head's logs"
    elif _TRANSIENT_STATUS.search(reason):
        advice = f"the head kept failing for {waited:.0f} s; check that its dashboard is up and its logs"
    else:
        advice = "check the address (the head's dashboard, e.g. http://head:8265) and that the head is up"
    return f"--dashboard {dashboard_address}: the cluster did not take the driver ({reason}); {advice}"
