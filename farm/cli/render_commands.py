"""``farm render``, ``farm submit``, ``farm cancel`` and ``farm retry``: thin shells over ``farm.jobs``."""

from __future__ import annotations

from pathlib import Path

import click
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskID, TextColumn, TimeElapsedColumn

from farm import defaults
from farm.cli.edit_commands import loudness_option, print_edit
from farm.cli.options import address_option, farm_from, json_option, print_json, settings_options, stdout
from farm.cli.styles import ENGINE_EVENT_STYLES
from farm.errors import EXIT_OK, EXIT_WORK_FAILED, UsageError
from farm.jobs import EngineEvent, EngineEventKind, Quality
from farm.paths import display_path

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
    farm = farm_from(**flags)
    if resume_job is None:
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
        rendered = farm.render(job_id, options=options, observer=display.observe, loudness_lufs=loudness)
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
    "--dashboard",
    metavar="URL",
    help="Run the driver on the cluster as a Ray job (the head's dashboard, e.g. http://head:8265).",
)
@json_option
@settings_options
@address_option
def submit(
    file: Path, quality: str | None, priority: int, dashboard: str | None, json_output: bool, **flags: object
) -> None:
    """Submit a shot list and return at once; the job renders in the background (or on the cluster).

    \b
    Examples:
      farm submit shots/ep01.yaml
      farm submit shots/ep01.yaml --quality final --dashboard http://head:8265
    """
    farm = farm_from(**flags)
    submission = farm.submit(file, quality=quality, priority=priority)
    job_id = submission.job_id
    where = farm.start_driver(job_id, dashboard=dashboard)
    if json_output:
        print_json({"job": job_id, "shots": len(submission.plan.tasks), "driver": where})
    else:
        stdout.print(f"job {job_id} submitted ({len(submission.plan.tasks)} shots; {where})", highlight=False)
        stdout.print(f"follow it with: farm status {job_id} --watch")


@click.command()
@click.argument("job", type=int)
@settings_options
def cancel(job: int, **flags: object) -> None:
    """Cancel a job: queued shots at once, running ones within a second or two.

    \b
    Example:
      farm cancel 12
    """
    count = farm_from(**flags).cancel(job)
    stdout.print(f"job {job} cancelled ({count} queued shots cancelled; running shots stop shortly)")


@click.command()
@click.argument("job", type=int)
@click.option("--shot", "shots", multiple=True, metavar="ID", help="Only this shot (repeatable).")
@settings_options
def retry(job: int, shots: tuple[str, ...], **flags: object) -> None:
    """Re-queue a job's failed and cancelled shots (or the shots named); then run farm render --resume JOB.

    \b
    Examples:
      farm retry 12
      farm retry 12 --shot sc01_020 --shot sc01_030
    """
    count = farm_from(**flags).retry(job, shots=list(shots) or None)
    if count == 0:
        stdout.print(f"job {job}: nothing to retry (no shot is failed or cancelled); farm status {job} shows why")
        return
    stdout.print(f"job {job}: {count} shot(s) re-queued; render them with: farm render --resume {job}")


class ShotProgress:
    """Rich progress: one bar for the job, one per shot while it renders, a line per finished shot."""

    def __init__(self) -> None:
        self.progress = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            transient=False,
        )
        self.shot_tasks: dict[str, TaskID] = {}
        self.job_task: TaskID | None = None
        self.finished = 0

    def __enter__(self) -> ShotProgress:
        self.progress.__enter__()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.progress.__exit__(*exc_info)

    def observe(self, event: EngineEvent) -> None:
        console = self.progress.console
        kind = event.kind
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
        elif kind is EngineEventKind.MESSAGE:
            console.print(f"[bold]{event.message}[/]", highlight=False)


COMMANDS = [render, submit, cancel, retry]
