"""``farm status``, ``farm events`` and ``farm db``: what the database knows about renders, for people.

Thin: each command resolves settings, opens the database, calls one query and prints a rich view (or
JSON with ``--json``). Reads take a snapshot and never block the scheduler's writes. With ``--server``,
``status`` and ``events`` read a farm manager's API instead: the same records, rebuilt from its JSON, in
the same views.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, TypeVar

import click
from rich.console import RenderableType
from rich.live import Live

from farm.cli.options import (
    client_from,
    farm_from,
    json_option,
    print_json,
    server_options,
    settings_from,
    settings_options,
    stdout,
)
from farm.cli.status_view import (
    AUTO_LIST_LIMIT,
    event_lines,
    job_is_finished,
    job_succeeded,
    job_view,
    jobs_table,
    notifications_table,
)
from farm.errors import EXIT_WORK_FAILED, UsageError
from farm.jobs import ShotState

if TYPE_CHECKING:
    from farm.cli.client import FarmClient
    from farm.db.records import JobDetail, JobSummary
    from farm.jobs import Farm

    Reads = Farm | FarmClient
    """The farm's database, or a farm manager's API (``--server``): the same reads, the same records."""

T = TypeVar("T")

# SQLAlchemy is imported inside the commands that use it, so `farm validate` does not pay for it. Reads
# never create or migrate a database: pointed at one that does not exist, they say which one they read.


@click.command()
@click.argument("job_id", metavar="[JOB]", type=int, required=False)
@json_option
@click.option("--watch", is_flag=True, help="Refresh until the job finishes (Ctrl-C to stop watching).")
@click.option(
    "--interval", type=click.FloatRange(min=0.1), default=2.0, show_default=True, help="Seconds between refreshes."
)
@click.option(
    "--limit", type=click.IntRange(min=1), default=20, show_default=True, help="How many recent jobs to list."
)
@click.option(
    "--state",
    "states",
    multiple=True,
    type=click.Choice([state.value for state in ShotState]),
    help="List the shots in this state (repeatable). Default: every shot of a job of up to 100, else the running ones.",
)
@click.option("--all", "show_all", is_flag=True, help="List every shot of the job, however many.")
@click.option(
    "--exit-status",
    is_flag=True,
    help="Exit 1 unless JOB is done with an edit that passed its checks (with --watch: once it has finished).",
)
@settings_options
@server_options
def status(
    job_id: int | None,
    json_output: bool,
    watch: bool,
    interval: float,
    limit: int,
    states: tuple[str, ...],
    show_all: bool,
    exit_status: bool,
    server: str | None,
    token: str | None,
    **flags: object,
) -> None:
    """Show recent jobs, or one JOB by scene and by shot: progress, failures, ETA and GPU-hours.

    \b
    Examples:
      farm status
      farm status 12 --watch
      farm status 12 --state failed --json
      farm status 12 --watch --exit-status && publish.sh
      farm status 12 --server http://farm-head:8765
    """
    if watch and json_output:
        raise UsageError("--watch redraws a table for people; for scripts, poll `farm status --json` instead")
    if exit_status and job_id is None:
        raise UsageError("--exit-status needs a JOB: it exits with that job's outcome")
    with client_from(server, token, flags) or farm_from(**flags) as farm:
        if job_id is None:
            if json_output:
                print_json({"jobs": [job.to_json() for job in farm.jobs(limit=limit)]})
            elif watch:
                _watch(lambda: farm.jobs(limit=limit), _jobs_page, interval)
            else:
                stdout.print(_jobs_page(farm.jobs(limit=limit))[0])
            return
        read = _job_reader(farm, job_id, [ShotState(state) for state in states], show_all or json_output)
        if json_output:
            detail = read()
            print_json(detail.to_json())
        elif watch:
            detail = _watch(read, lambda detail: _job_page(detail, chosen_by_user=bool(states) or show_all), interval)
        else:
            detail = read()
            stdout.print(_job_page(detail, chosen_by_user=bool(states) or show_all)[0])
    if exit_status and not job_succeeded(detail.job):
        raise SystemExit(EXIT_WORK_FAILED)


def _job_reader(farm: Reads, job_id: int, states: list[ShotState], every_shot: bool) -> Callable[[], JobDetail]:
    """The status read for one job: the shots asked for, or a small job whole and a big one's running shots."""
    if states:
        return lambda: farm.status(job_id, shot_states=states)
    if every_shot:
        return lambda: farm.status(job_id)
    return lambda: farm.status(job_id, shot_states=[ShotState.RUNNING], all_shots_up_to=AUTO_LIST_LIMIT)


def _job_page(detail: JobDetail, *, chosen_by_user: bool) -> tuple[RenderableType, bool]:
    return job_view(detail, chosen_by_user=chosen_by_user, width=stdout.width), job_is_finished(detail.job.state)


def _jobs_page(jobs: Sequence[JobSummary]) -> tuple[RenderableType, bool]:
    return jobs_table(jobs, datetime.now(UTC), width=stdout.width), all(job_is_finished(job.state) for job in jobs)


def _watch(read: Callable[[], T], page: Callable[[T], tuple[RenderableType, bool]], interval: float) -> T:
    """Redraw in place until the job (or, without a job, every listed job) has finished; Ctrl-C stops.
    Returns the last thing read."""
    last = read()
    view, finished = page(last)
    try:
        with Live(view, console=stdout, auto_refresh=False) as live:
            while not finished:
                time.sleep(interval)
                last = read()
                view, finished = page(last)
                live.update(view, refresh=True)
    except KeyboardInterrupt:
        pass
    return last


@click.command()
@click.argument("job_id", metavar="JOB", type=int)
@json_option
@click.option("--limit", type=click.IntRange(min=1), help="Only the last N events.")
@settings_options
@server_options
def events(
    job_id: int, json_output: bool, limit: int | None, server: str | None, token: str | None, **flags: object
) -> None:
    """Print JOB's audit log: who changed what, when, from which state to which.

    \b
    Examples:
      farm events 12
      farm events 12 --limit 20 --json
      farm events 12 --server http://farm-head:8765
    """
    with client_from(server, token, flags) or farm_from(**flags) as farm:
        log = farm.events(job_id, limit=limit)
    if json_output:
        print_json({"job": job_id, "events": [event.to_json() for event in log]})
        return
    color = sys.stdout.isatty()
    try:
        for line in event_lines(log, color=color):
            click.echo(line, color=color)
    except BrokenPipeError:
        # `farm events 12 | head`: the reader has seen enough. Point stdout at nothing so the interpreter's
        # final flush does not fail again.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())


@click.command()
@click.argument("job_id", metavar="[JOB]", type=int, required=False)
@json_option
@click.option("--limit", type=click.IntRange(min=1), default=50, show_default=True, help="The newest N.")
@settings_options
def notifications(job_id: int | None, json_output: bool, limit: int, **flags: object) -> None:
    """Show the notifications farm sent (webhooks, Slack, email): to whom, about what, and how it went.

    \b
    Examples:
      farm notifications
      farm notifications 12 --json
    """
    with farm_from(**flags) as farm:
        sent = farm.notifications(job_id, limit=limit)
    if json_output:
        print_json({"notifications": [note.to_json() for note in sent]})
        return
    stdout.print(notifications_table(sent, datetime.now(UTC)))


@click.group()
def db() -> None:
    """The tracking database: schema version and upgrades."""


@db.command()
@click.option("--revision", default="head", show_default=True, help="Schema revision to upgrade to.")
@settings_options
def upgrade(revision: str, **flags: object) -> None:
    """Create the tables in a new database, or migrate an older one to this farm's schema.

    \b
    Example:
      farm db upgrade --db postgresql://farm@db/farm
    """
    from farm.db.session import upgrade_database

    before, after = upgrade_database(settings_from(**flags).database_url, revision)
    if before.current == after.current:
        click.echo(f"{after.url}: already at schema {after.current}")
    else:
        click.echo(f"{after.url}: schema {before.current or '(empty)'} -> {after.current}")


@db.command()
@json_option
@settings_options
def current(json_output: bool, **flags: object) -> None:
    """Show which database farm uses and its schema version (a read: it creates nothing).

    \b
    Example:
      farm db current --json
    """
    from farm.db.session import database_status

    state = database_status(settings_from(**flags).database_url)
    if json_output:
        print_json({"url": state.url, "current": state.current, "head": state.head, "up_to_date": state.up_to_date})
        return
    verdict = "up to date" if state.up_to_date else "needs `farm db upgrade`" if state.known else "newer than this farm"
    click.echo(f"{state.url}: schema {state.current or '(empty)'}, this farm's is {state.head} ({verdict})")


COMMANDS = [status, events, notifications, db]
