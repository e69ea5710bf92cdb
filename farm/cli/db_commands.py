"""``farm status``, ``farm events`` and ``farm db``: what the database knows about renders, for people.

Thin: each command resolves settings, opens the database, calls one query and prints a rich view (or
JSON with ``--json``). Reads take a snapshot and never block the scheduler's writes.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING

import click
from rich.console import RenderableType
from rich.live import Live

from farm.cli.options import json_option, print_json, settings_from, settings_options, stdout
from farm.cli.status_view import AUTO_LIST_LIMIT, event_lines, job_is_finished, job_view, jobs_table
from farm.db.states import ShotState
from farm.errors import UsageError

if TYPE_CHECKING:
    from farm.db.records import JobDetail
    from farm.db.session import Database

# SQLAlchemy is imported inside the commands that use it, so `farm validate` does not pay for it.


def _open(flags: dict[str, object]) -> Database:
    from farm.db.session import open_database

    return open_database(settings_from(**flags).database_url)


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
@settings_options
def status(
    job_id: int | None,
    as_json: bool,
    watch: bool,
    interval: float,
    limit: int,
    states: tuple[str, ...],
    show_all: bool,
    **flags: object,
) -> None:
    """Show recent jobs, or one JOB by scene and by shot: progress, failures, ETA and GPU-hours."""
    if watch and as_json:
        raise UsageError("--watch redraws a table for people; for scripts, poll `farm status --json` instead")
    from farm.db.queries import job_summaries

    with _open(flags) as db:
        if job_id is None:
            if as_json:
                print_json({"jobs": [job.as_json() for job in job_summaries(db, limit=limit)]})
            elif watch:
                _watch(lambda: _jobs_page(db, limit), interval)
            else:
                stdout.print(_jobs_page(db, limit)[0])
            return
        read = _job_reader(db, job_id, [ShotState(state) for state in states], show_all or as_json)
        if as_json:
            print_json(read().as_json())
        elif watch:
            _watch(lambda: _job_page(read(), chosen_by_user=bool(states) or show_all), interval)
        else:
            stdout.print(_job_page(read(), chosen_by_user=bool(states) or show_all)[0])


def _job_reader(db: Database, job_id: int, states: list[ShotState], every_shot: bool) -> Callable[[], JobDetail]:
    """The status read for one job: the shots asked for, or a small job whole and a big one's running shots."""
    from farm.db.queries import job_detail

    if states:
        return lambda: job_detail(db, job_id, shot_states=states)
    if every_shot:
        return lambda: job_detail(db, job_id)
    return lambda: job_detail(db, job_id, shot_states=[ShotState.RUNNING], all_shots_up_to=AUTO_LIST_LIMIT)


def _job_page(detail: JobDetail, *, chosen_by_user: bool) -> tuple[RenderableType, bool]:
    return job_view(detail, chosen_by_user=chosen_by_user), job_is_finished(detail.job.state)


def _jobs_page(db: Database, limit: int) -> tuple[RenderableType, bool]:
    from farm.db.queries import job_summaries

    jobs = job_summaries(db, limit=limit)
    return jobs_table(jobs, datetime.now(UTC)), all(job_is_finished(job.state) for job in jobs)


def _watch(page: Callable[[], tuple[RenderableType, bool]], interval: float) -> None:
    """Redraw in place until the job (or, without a job, every listed job) has finished; Ctrl-C stops."""
    view, finished = page()
    try:
        with Live(view, console=stdout, auto_refresh=False) as live:
            while not finished:
                time.sleep(interval)
                view, finished = page()
                live.update(view, refresh=True)
    except KeyboardInterrupt:
        return


@click.command()
@click.argument("job_id", metavar="JOB", type=int)
@json_option
@click.option("--limit", type=click.IntRange(min=1), help="Only the last N events.")
@settings_options
def events(job_id: int, as_json: bool, limit: int | None, **flags: object) -> None:
    """Print JOB's audit log: who changed what, when, from which state to which."""
    from farm.db.queries import job_events

    with _open(flags) as db:
        log = job_events(db, job_id, limit=limit)
    if as_json:
        print_json({"job": job_id, "events": [event.as_json() for event in log]})
        return
    color = sys.stdout.isatty()
    try:
        for line in event_lines(log, color=color):
            click.echo(line, color=color)
    except BrokenPipeError:
        # `farm events 12 | head`: the reader has seen enough. Point stdout at nothing so the interpreter's
        # final flush does not fail again.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())


@click.group()
def db() -> None:
    """The tracking database: schema version and upgrades."""


@db.command()
@click.option("--revision", default="head", show_default=True, help="Schema revision to upgrade to.")
@settings_options
def upgrade(revision: str, **flags: object) -> None:
    """Create the tables in a new database, or migrate an older one to this farm's schema."""
    from farm.db.session import upgrade_database

    before, after = upgrade_database(settings_from(**flags).database_url, revision)
    if before.current == after.current:
        click.echo(f"{after.url}: already at schema {after.current}")
    else:
        click.echo(f"{after.url}: schema {before.current or '(empty)'} -> {after.current}")


@db.command()
@json_option
@settings_options
def current(as_json: bool, **flags: object) -> None:
    """Show which database farm uses and its schema version."""
    from farm.db.session import database_status

    state = database_status(settings_from(**flags).database_url)
    if as_json:
        print_json({"url": state.url, "current": state.current, "head": state.head, "up_to_date": state.up_to_date})
        return
    verdict = "up to date" if state.up_to_date else "needs `farm db upgrade`" if state.known else "newer than this farm"
    click.echo(f"{state.url}: schema {state.current or '(empty)'}, this farm's is {state.head} ({verdict})")


COMMANDS = [status, events, db]
