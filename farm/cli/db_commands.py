"""``farm status``, ``farm events`` and ``farm db``: what the database knows about renders, for people.

Thin: each command resolves settings, opens the database, calls one query and prints a rich view (or
JSON with ``--json``). Reads take a snapshot and never block the scheduler's writes.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import TYPE_CHECKING

import click
from rich.live import Live

from farm.cli.options import json_option, print_json, settings_from, settings_options, stdout
from farm.cli.status_view import events_table, job_is_finished, job_view, jobs_table
from farm.db.states import ShotState
from farm.errors import UsageError

if TYPE_CHECKING:
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
    from farm.db.queries import job_detail, job_summaries

    wanted = {ShotState(state) for state in states} or None
    with _open(flags) as db:
        if as_json:
            if job_id is None:
                print_json({"jobs": [job.as_json() for job in job_summaries(db, limit=limit)]})
            else:
                print_json(job_detail(db, job_id).as_json())
        elif watch:
            _watch(db, job_id, limit, interval, wanted, show_all)
        elif job_id is None:
            stdout.print(jobs_table(job_summaries(db, limit=limit), datetime.now(UTC)))
        else:
            stdout.print(job_view(job_detail(db, job_id), states=wanted, show_all=show_all))


def _watch(
    db: Database, job_id: int | None, limit: int, interval: float, states: set[ShotState] | None, show_all: bool
) -> None:
    """Redraw in place until the job (or, without a job, every listed job) has finished."""
    from farm.db.queries import job_detail, job_summaries

    def snapshot() -> tuple[object, bool]:
        if job_id is None:
            jobs = job_summaries(db, limit=limit)
            return jobs_table(jobs, datetime.now(UTC)), all(job_is_finished(job.state) for job in jobs)
        detail = job_detail(db, job_id)
        return job_view(detail, states=states, show_all=show_all), job_is_finished(detail.job.state)

    view, finished = snapshot()
    try:
        with Live(view, console=stdout, auto_refresh=False) as live:  # type: ignore[arg-type]
            while not finished:
                time.sleep(interval)
                view, finished = snapshot()
                live.update(view, refresh=True)  # type: ignore[arg-type]
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
    else:
        stdout.print(events_table(job_id, log, datetime.now(UTC)))


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
