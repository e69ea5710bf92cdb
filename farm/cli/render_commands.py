"""``farm render``, ``farm submit``, ``farm cancel`` and ``farm retry``: thin shells over ``farm.jobs``."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import click
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
)

from farm import defaults
from farm.cli.edit_commands import loudness_option, print_edit
from farm.cli.options import (
    address_option,
    client_from,
    farm_from,
    json_option,
    print_json,
    server_options,
    settings_options,
    stdout,
)
from farm.cli.styles import ENGINE_EVENT_STYLES
from farm.errors import EXIT_OK, EXIT_WORK_FAILED, UsageError
from farm.install import require_render_side
from farm.jobs import EngineEvent, EngineEventKind, Farm, Quality
from farm.paths import display_path

if TYPE_CHECKING:
    from farm.cli.client import FarmClient

quality_option = click.option(
    "--quality",
    type=click.Choice([q.value for q in Quality]),
    help="Render every shot at this quality, whatever the shot list says.",
)
priority_option = click.option(
    "--priority", type=int, default=0, show_default=True, help="Higher runs first when jobs share a cluster."
)


@click.command()
@click.argument("file", required=False, type=click.Path(path_type=Path, dir_okay=False))
@click.option(
    "--resume",
    "resume_job",
    type=int,
    metavar="JOB",
    help="Drive an existing job instead (after Ctrl-C, a lost driver, or farm retry).",
)
@quality_option
@priority_option
@click.option("--workers", type=click.IntRange(min=1), help="At most this many workers per model.")
@click.option(
    "--max-attempts",
    type=click.IntRange(min=1),
    default=defaults.MAX_ATTEMPTS,
    show_default=True,
    help="Errors a shot may have before it fails.",
)
@loudness_option
@settings_options
@address_option
def render(
    file: Path | None,
    resume_job: int | None,
    quality: str | None,
    priority: int,
    workers: int | None,
    max_attempts: int,
    loudness: float,
    **flags: object,
) -> None:
    """Render a shot list in the foreground, to a checked edit (Ctrl-C leaves a resumable job).

    \b
    Examples:
      farm render shots/ep01.yaml
      farm render shots/ep01.yaml --quality final --address head:6379
      farm render --resume 12
    """
    from farm.jobs import EngineOptions, JobState, Verdict

    if (file is None) == (resume_job is None):
        raise UsageError("give a shot list to render, or --resume JOB (not both)")
    require_render_side("farm render")
    farm = farm_from(**flags)
    if resume_job is None:
        farm.check_target()  # an unreachable --address is refused before the job is recorded
        submission = farm.submit(file, quality=quality, priority=priority)
        job_id = submission.job_id
        stdout.print(
            f"job {job_id}: {display_path(file)}, {len(submission.plan.tasks)} shots, "
            f"{submission.plan.total_frames} frames",
            highlight=False,
        )
    else:
        farm.status(resume_job)  # UnknownJob before Ray starts, if there is no such job
        job_id = resume_job
    options = EngineOptions(max_attempts=max_attempts, max_workers_per_model=workers)
    with ShotProgress() as display:
        rendered = farm.render(
            job_id,
            options=options,
            observer=display.observe,
            loudness_lufs=loudness,
            just_submitted=resume_job is None,
        )
    outcome = rendered.outcome
    if outcome.interrupted:
        stdout.print(f"job {job_id} interrupted; resume it with: farm render --resume {job_id}")
        raise SystemExit(130)
    stdout.print(
        f"job {job_id} {outcome.state}: {outcome.done} done ({outcome.cached} from cache), "
        f"{outcome.failed} failed, {outcome.cancelled} cancelled in {outcome.wall_seconds:.1f} s",
        highlight=False,
    )
    if outcome.failed:
        stdout.print(f"see why with: farm status {job_id}; re-queue with: farm retry {job_id}")
    for edit in rendered.edits:
        print_edit(edit)
    edit_failed = rendered.edit is not None and rendered.edit.verdict is Verdict.FAIL
    raise SystemExit(EXIT_OK if outcome.state is JobState.DONE and not edit_failed else EXIT_WORK_FAILED)


@click.command()
@click.argument("file", type=click.Path(path_type=Path, dir_okay=False))
@quality_option
@priority_option
@click.option(
    "--driver",
    "own_driver",
    is_flag=True,
    help="Drive this job alone in a background process on this machine, without a farm manager.",
)
@click.option(
    "--dashboard",
    metavar="URL",
    help="Drive this job alone as a Ray job on the cluster (the head's dashboard, e.g. http://head:8265).",
)
@click.option("--upload", is_flag=True, help="With --server: send the shot list's folder, media included.")
@click.option("--idempotency-key", metavar="KEY", help="With --server: a repeat with this key returns the same job.")
@json_option
@settings_options
@address_option
@server_options
def submit(
    file: Path,
    quality: str | None,
    priority: int,
    own_driver: bool,
    dashboard: str | None,
    upload: bool,
    idempotency_key: str | None,
    json_output: bool,
    server: str | None,
    token: str | None,
    **flags: object,
) -> None:
    """Submit a shot list to the farm's queue and return at once; the farm manager (farm serve) renders it.

    With --server the farm manager reads the shot list at its absolute path (the studio's shared storage),
    or, with --upload, receives its folder.

    \b
    Examples:
      farm submit shots/ep01.yaml
      farm submit shots/ep01.yaml --quality final --priority 5
      farm submit shots/ep01.yaml --driver
      farm submit /shared/show/ep01.yaml --server http://farm-head:8765
      farm submit ep01.yaml --upload --server http://farm-head:8765 --token $FARM_TOKEN
    """
    client = client_from(server, token, flags)
    if client is not None or upload or idempotency_key:
        return _submit_to_server(client, file, quality, priority, upload, idempotency_key, dashboard, json_output)
    if own_driver or dashboard:  # the driver runs Ray from here; checked before the job is queued
        require_render_side(f"farm submit {'--driver' if own_driver else '--dashboard'}")
    farm = farm_from(**flags)
    if own_driver or dashboard:  # a target this process cannot reach is refused before the job is recorded
        farm.check_target(dashboard=dashboard)
    submission = farm.submit(file, quality=quality, priority=priority)
    job_id = submission.job_id
    where = farm.start_driver(job_id, dashboard=dashboard) if own_driver or dashboard else _who_renders(farm)
    budget = farm.show_budget(submission.plan.project)
    if json_output:
        outlook = budget.to_json() if budget else None
        print_json({"job": job_id, "shots": len(submission.plan.tasks), "driver": where, "budget": outlook})
    else:
        stdout.print(f"job {job_id} submitted ({len(submission.plan.tasks)} shots; {where})", highlight=False)
        if budget is not None:
            stdout.print(budget.describe(), style="red" if budget.exceeds else None, highlight=False)
        stdout.print(f"follow it with: farm status {job_id} --watch")


def _who_renders(farm: Farm) -> str:
    """Who will pick a queued job up: the live manager, or nobody yet (and how to change that)."""
    from farm.jobs import EngineOptions

    manager = farm.manager()
    if manager is not None and manager.alive(EngineOptions().stale_after_seconds):
        return f"the farm manager {manager.holder} renders it"
    return "queued: no farm manager is running; start one with `farm serve`, or submit with --driver"


@click.command()
@click.argument("job", type=int)
@settings_options
@server_options
def cancel(job: int, server: str | None, token: str | None, **flags: object) -> None:
    """Cancel a job: queued shots at once, running ones within a second or two.

    \b
    Examples:
      farm cancel 12
      farm cancel 12 --server http://farm-head:8765
    """
    client = client_from(server, token, flags)
    if client is not None:
        with client:
            count = client.cancel(job)
        stdout.print(f"job {job} cancelled ({count} queued shots cancelled; running shots stop shortly)")
        return
    count = farm_from(**flags).cancel(job)
    stdout.print(f"job {job} cancelled ({count} queued shots cancelled; running shots stop shortly)")


@click.command()
@click.argument("job", type=int)
@click.option("--shot", "shots", multiple=True, metavar="ID", help="Only this shot (repeatable).")
@settings_options
@server_options
def retry(job: int, shots: tuple[str, ...], server: str | None, token: str | None, **flags: object) -> None:
    """Re-queue a job's failed and cancelled shots (or the shots named); the farm manager renders them.

    \b
    Examples:
      farm retry 12
      farm retry 12 --shot sc01_020 --shot sc01_030
      farm retry 12 --server http://farm-head:8765
    """
    client = client_from(server, token, flags)
    if client is not None:
        with client:
            count = client.retry(job, shots=list(shots) or None)
        if count == 0:
            stdout.print(f"job {job}: nothing to retry (no shot is failed or cancelled); farm status {job} shows why")
        else:
            stdout.print(f"job {job}: {count} shot(s) re-queued; the farm manager renders them (farm status {job})")
        return
    count = farm_from(**flags).retry(job, shots=list(shots) or None)
    if count == 0:
        stdout.print(f"job {job}: nothing to retry (no shot is failed or cancelled); farm status {job} shows why")
        return
    stdout.print(
        f"job {job}: {count} shot(s) re-queued; the farm manager renders them (without one: farm render --resume {job})"
    )


def _submit_to_server(
    client: FarmClient | None,
    file: Path,
    quality: str | None,
    priority: int,
    upload: bool,
    idempotency_key: str | None,
    dashboard: str | None,
    json_output: bool,
) -> None:
    """``farm submit --server``: the farm manager records the job and renders it; nothing runs here."""
    if client is None:
        raise UsageError("--upload and --idempotency-key talk to a farm manager: give --server URL (or FARM_SERVER)")
    if dashboard:
        raise UsageError("--dashboard starts a driver from here; with --server the farm manager drives the job")
    with client:
        if upload:
            if not file.is_file():
                raise UsageError(
                    f"{display_path(file)} is not a file; --upload sends the folder of an existing shot list"
                )
            job = client.submit_bundle(file, quality=quality, priority=priority, idempotency_key=idempotency_key)
        else:
            path = file.expanduser().absolute()
            job = client.submit_path(path, quality=quality, priority=priority, idempotency_key=idempotency_key)
    if json_output:
        print_json({"job": job["job_id"], "shots": job["shots"], "server": client.url, "replayed": job["replayed"]})
        return
    again = " (already submitted with this key)" if job["replayed"] else ""
    stdout.print(f"job {job['job_id']} submitted to {client.url}{again} ({job['shots']} shots)", highlight=False)
    stdout.print(f"follow it with: farm status {job['job_id']} --server {client.url} --watch", highlight=False)


class ShotProgress:
    """Rich progress: one bar for the job, one per shot while it renders, a line per finished shot."""

    def __init__(self) -> None:
        self.progress = Progress(
            SpinnerColumn(finished_text=" "),
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            transient=False,
        )
        self.shot_tasks: dict[str, TaskID] = {}
        self.job_task: TaskID | None = None
        self.finished = 0
        self.waiting: TaskID | None = None
        """A spinner saying what the farm is doing while no shot shows progress (Ray starting, an edit)."""

    def __enter__(self) -> ShotProgress:
        self.progress.__enter__()
        self.wait_for("starting Ray and the model's workers")
        return self

    def wait_for(self, what: str) -> None:
        self.done_waiting()
        self.waiting = self.progress.add_task(what, total=None)

    def done_waiting(self) -> None:
        if self.waiting is not None:
            self.progress.remove_task(self.waiting)
            self.waiting = None

    def __exit__(self, *exc_info: object) -> None:
        self.done_waiting()
        self.progress.__exit__(*exc_info)

    def observe(self, event: EngineEvent) -> None:
        console = self.progress.console
        kind = event.kind
        if kind is not EngineEventKind.MESSAGE and kind is not EngineEventKind.JOB:
            self.done_waiting()
        if kind is EngineEventKind.JOB:
            self.finished = round(event.fraction * event.total)
            if self.job_task is None:
                self.job_task = self.progress.add_task("shots", total=event.total, completed=self.finished)
            else:  # a retake pass: the same bar, back to what is done now
                self.progress.update(self.job_task, total=event.total, completed=self.finished)
        elif kind is EngineEventKind.STARTED:
            self.shot_tasks[event.shot_id] = self.progress.add_task(f"  {event.shot_id}", total=100)
        elif kind is EngineEventKind.PROGRESS and event.shot_id in self.shot_tasks:
            self.progress.update(
                self.shot_tasks[event.shot_id],
                completed=100 * event.fraction,
                description=f"  {event.shot_id} {event.message}",
            )
        elif kind.ends_attempt:
            task = self.shot_tasks.pop(event.shot_id, None)
            if task is not None:
                self.progress.remove_task(task)
            note = f" {event.message}" if event.message else ""
            console.print(f"[{ENGINE_EVENT_STYLES[kind]}]{kind:>9}[/] {event.shot_id}{note}", highlight=False)
            if kind is not EngineEventKind.RETRY and self.job_task is not None:
                self.finished += 1
                self.progress.update(self.job_task, completed=self.finished)
        elif kind is EngineEventKind.MESSAGE and event.message.startswith("assembling"):
            self.wait_for(f"{event.message}: the edit, its timeline and its continuity checks")
        elif kind is EngineEventKind.MESSAGE:
            console.print(f"[bold]{event.message}[/]", highlight=False)


COMMANDS = [render, submit, cancel, retry]
