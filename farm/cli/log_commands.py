"""``farm logs``: what a job's render attempts printed, read from their captured log files (or, with
``--server``, from the farm manager, for a machine that cannot see those files).

``--follow`` keeps printing what the newest attempt appends until that attempt ends, like ``tail -f``
that knows when to stop: it waits for an attempt to start if none has, and stops when the job finishes
without one.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

import click

from farm.cli.options import client_from, farm_from, json_option, print_json, server_options, settings_options
from farm.jobs import FINISHED_JOB_STATES, ShotState

if TYPE_CHECKING:
    from farm.cli.client import FarmClient
    from farm.jobs import Farm
    from farm.jobs.logs import AttemptLog

    Reads = Farm | FarmClient


@click.command()
@click.argument("job_id", metavar="JOB", type=int)
@click.option("--shot", "shot_id", metavar="ID", help="Only this shot's attempts.")
@click.option("--attempt", type=click.IntRange(min=1), metavar="N", help="Only attempt N (1 is the first).")
@click.option("--follow", "-f", is_flag=True, help="Keep printing the newest attempt's output until it ends.")
@click.option(
    "--interval", type=click.FloatRange(min=0.05), default=1.0, show_default=True, help="Seconds between looks."
)
@json_option
@settings_options
@server_options
def logs(
    job_id: int,
    shot_id: str | None,
    attempt: int | None,
    follow: bool,
    interval: float,
    json_output: bool,
    server: str | None,
    token: str | None,
    **flags: object,
) -> None:
    """Print the output of JOB's render attempts: warnings, progress and tracebacks, attempt by attempt.

    \b
    Examples:
      farm logs 12
      farm logs 12 --shot sc01_020 --attempt 2
      farm logs 12 --shot sc01_020 --follow
      farm logs 12 --server http://farm-head:8765
    """
    with client_from(server, token, flags) or farm_from(**flags) as farm:
        if follow:
            try:
                _follow(farm, job_id, shot_id, attempt, interval)
            except KeyboardInterrupt:
                return
            return
        found = farm.logs(job_id, shot_id, attempt)
    if json_output:
        print_json({"job": job_id, "logs": [log.to_json() for log in found]})
        return
    if not found:
        click.echo(f"job {job_id} has no render attempts yet; `farm status {job_id}` shows where its shots are")
        return
    for log in found:
        _print_log(log)


def _print_log(log: AttemptLog) -> None:
    click.echo(_heading(log))
    if log.missing:
        click.echo(f"({log.missing})")
        return
    if log.truncated:
        click.echo(f"(the first {log.offset} bytes are left out; the log is {log.log_path})")
    _echo_text(log.text)


def _heading(log: AttemptLog) -> str:
    where = f"  {log.log_path}" if log.log_path else ""
    return f"== shot {log.shot_id}, attempt {log.attempt_no} ({log.state}){where}"


def _echo_text(text: str) -> None:
    if text:
        click.echo(text, nl=not text.endswith("\n"))


def _follow(farm: Reads, job_id: int, shot_id: str | None, attempt: int | None, interval: float) -> None:
    """Print the newest attempt's log (or attempt ``attempt``'s), then what it appends, until it ends."""
    log = _first_attempt(farm, job_id, shot_id, attempt, interval)
    if log is None:
        click.echo(f"job {job_id} finished without a render attempt to follow")
        return
    click.echo(_heading(log))
    _echo_text(log.text)
    while log.running:
        time.sleep(interval)
        log = farm.logs(job_id, log.shot_id, log.attempt_no, offset=log.next_offset)[0]
        _echo_text(log.text)
    ending = f" ({log.missing})" if log.missing else ""
    click.echo(f"== attempt {log.attempt_no} of shot {log.shot_id} {log.state}{ending}")


def _first_attempt(
    farm: Reads, job_id: int, shot_id: str | None, attempt: int | None, interval: float
) -> AttemptLog | None:
    """The attempt to follow, once there is one; None if the job finished without any."""
    while True:
        found = farm.logs(job_id, shot_id, attempt, latest=True)
        if found:
            return found[0]
        if farm.status(job_id, shot_states=[ShotState.RUNNING]).job.state in FINISHED_JOB_STATES:
            return None
        time.sleep(interval)


COMMANDS = [logs]
