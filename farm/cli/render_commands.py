"""``farm render``, ``farm submit``, ``farm cancel`` and ``farm retry``."""

from __future__ import annotations

from pathlib import Path

import click
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskID, TextColumn, TimeElapsedColumn

from farm.cli.edit_commands import loudness_option, print_edit
from farm.cli.options import address_option, json_option, print_json, settings_from, settings_options, stdout
from farm.errors import EXIT_OK, EXIT_WORK_FAILED, UsageError
from farm.settings import Settings
from farm.shotlist.load import display_path
from farm.shotlist.types import Quality

quality_option = click.option(
    "--quality",
    type=click.Choice([q.value for q in Quality]),
    help="Render every shot at this quality, whatever the shot list says.",
)
priority_option = click.option(
    "--priority", type=int, default=0, show_default=True, help="Higher runs first when jobs share a cluster."
)


def _open_db(settings: Settings):
    from farm.db.session import open_database

    settings.data_dir.mkdir(parents=True, exist_ok=True)
    return open_database(settings.database_url)


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
    default=3,
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
    """Render a shot list in the foreground (Ctrl-C leaves a resumable job)."""
    from farm.engine.runner import render_to_edit, require_job, submit_shot_list
    from farm.engine.scheduler import EngineOptions

    if (file is None) == (resume_job is None):
        raise UsageError("give a shot list to render, or --resume JOB (not both)")
    settings = settings_from(**flags)
    db = _open_db(settings)
    if resume_job is None:
        submission = submit_shot_list(
            db, settings, file, quality=Quality(quality) if quality else None, priority=priority
        )
        job_id = submission.job_id
        stdout.print(
            f"job {job_id}: {display_path(file)}, {len(submission.plan.tasks)} shots, "
            f"{submission.plan.total_frames} frames",
            highlight=False,
        )
    else:
        require_job(db, resume_job)
        job_id = resume_job
    options = EngineOptions(max_attempts=max_attempts, max_workers_per_model=workers)
    with ShotProgress() as display:
        rendered = render_to_edit(
            db, settings, job_id, options=options, observer=display.observe, loudness_lufs=loudness
        )
    outcome = rendered.outcome
    if outcome.interrupted:
        stdout.print(f"job {job_id} interrupted; resume it with: farm render --resume {job_id}")
        raise SystemExit(130)
    stdout.print(
        f"job {job_id} {outcome.state.value}: {outcome.done} done ({outcome.cached} from cache), "
        f"{outcome.failed} failed, {outcome.cancelled} cancelled in {outcome.wall_seconds:.1f} s",
        highlight=False,
    )
    if outcome.failed:
        stdout.print(f"see why with: farm status {job_id}; re-queue with: farm retry {job_id}")
    for edit in rendered.edits:
        print_edit(edit)
    edit_failed = rendered.edit is not None and rendered.edit.verdict == "fail"
    raise SystemExit(EXIT_OK if outcome.state.value == "done" and not edit_failed else EXIT_WORK_FAILED)


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
    file: Path, quality: str | None, priority: int, dashboard: str | None, as_json: bool, **flags: object
) -> None:
    """Submit a shot list and return at once; the job renders in the background (or on the cluster)."""
    from farm.engine.runner import start_detached_driver, submit_shot_list, submit_to_ray_jobs

    settings = settings_from(**flags)
    db = _open_db(settings)
    submission = submit_shot_list(db, settings, file, quality=Quality(quality) if quality else None, priority=priority)
    job_id = submission.job_id
    if dashboard:
        where = f"Ray job {submit_to_ray_jobs(settings, job_id, dashboard)}"
    else:
        log = settings.logs_dir / f"job-{job_id}.log"
        where = f"driver pid {start_detached_driver(settings, job_id, log)}, log {log}"
    if as_json:
        print_json({"job": job_id, "shots": len(submission.plan.tasks), "driver": where})
    else:
        stdout.print(f"job {job_id} submitted ({len(submission.plan.tasks)} shots; {where})", highlight=False)
        stdout.print(f"follow it with: farm status {job_id} --watch")


@click.command()
@click.argument("job", type=int)
@settings_options
def cancel(job: int, **flags: object) -> None:
    """Cancel a job: queued shots at once, running ones within a second or two."""
    from farm.engine.runner import cancel as cancel_job
    from farm.engine.runner import require_job

    settings = settings_from(**flags)
    db = _open_db(settings)
    require_job(db, job)
    count = cancel_job(db, job, actor=settings.user)
    stdout.print(f"job {job} cancelled ({count} queued shots cancelled; running shots stop shortly)")


@click.command()
@click.argument("job", type=int)
@click.option("--shot", "shots", multiple=True, metavar="ID", help="Only this shot (repeatable).")
@settings_options
def retry(job: int, shots: tuple[str, ...], **flags: object) -> None:
    """Re-queue a job's failed and cancelled shots; then run farm render --resume JOB."""
    from farm.engine.runner import require_job
    from farm.engine.runner import retry as retry_job

    settings = settings_from(**flags)
    db = _open_db(settings)
    require_job(db, job)
    count = retry_job(db, job, actor=settings.user, shot_ids=list(shots) or None)
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

    def observe(self, event) -> None:
        console = self.progress.console
        if event.kind == "job":
            self.finished = round(event.fraction * event.total)
            self.job_task = self.progress.add_task("shots", total=event.total, completed=self.finished)
        elif event.kind == "started":
            self.shot_tasks[event.shot_id] = self.progress.add_task(f"  {event.shot_id}", total=100)
        elif event.kind == "progress" and event.shot_id in self.shot_tasks:
            self.progress.update(
                self.shot_tasks[event.shot_id],
                completed=100 * event.fraction,
                description=f"  {event.shot_id} {event.message}",
            )
        elif event.kind in {"done", "cached", "failed", "cancelled", "retry"}:
            task = self.shot_tasks.pop(event.shot_id, None)
            if task is not None:
                self.progress.remove_task(task)
            style = {"done": "green", "cached": "cyan", "failed": "red", "cancelled": "yellow", "retry": "yellow"}
            note = f" {event.message}" if event.message else ""
            console.print(f"[{style[event.kind]}]{event.kind:>9}[/] {event.shot_id}{note}", highlight=False)
            if event.kind != "retry" and self.job_task is not None:
                self.finished += 1
                self.progress.update(self.job_task, completed=self.finished)
        elif event.kind == "message":
            console.print(f"[bold]{event.message}[/]", highlight=False)


COMMANDS = [render, submit, cancel, retry]
