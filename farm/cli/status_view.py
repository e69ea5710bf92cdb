"""How ``farm status`` and ``farm events`` look in a terminal: rich tables built from the query records.

Written for a producer checking renders in the morning: failures and their messages first, then the
job's progress bar, ETA and GPU-hours, then scenes and shots. Times are shown in local time.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import datetime, timedelta

import click
from rich.console import Group, RenderableType
from rich.progress_bar import ProgressBar
from rich.table import Table
from rich.text import Text

from farm.cli.styles import STATE_STYLES, VERDICT_STYLES
from farm.db.records import EventRecord, JobDetail, JobSummary, ShotCounts, ShotRow
from farm.db.states import FINISHED_JOB_STATES, JobState, ShotState


def state_text(state: str | None, *, cached: bool = False) -> Text:
    if state is None:
        return Text("")
    label = f"{state} (cached)" if cached else str(state)
    return Text(label, style=STATE_STYLES.get(str(state), ""))


def local_time(moment: datetime | None, now: datetime) -> str:
    """``14:03:07`` today, ``2026-05-09 14:03`` otherwise, in the machine's local time zone."""
    if moment is None:
        return "-"
    local = moment.astimezone()
    return local.strftime("%H:%M:%S") if local.date() == now.astimezone().date() else local.strftime("%Y-%m-%d %H:%M")


def duration(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    seconds = max(seconds, 0.0)
    if seconds < 60:
        return f"{seconds:.1f}s"
    minutes, secs = divmod(round(seconds), 60)
    if minutes < 60:
        return f"{minutes}m{secs:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m"


def eta(job: JobSummary, now: datetime) -> str:
    if job.state in FINISHED_JOB_STATES:
        return "-"
    if job.eta_seconds is None:
        return "unknown"
    if job.eta_seconds == 0:
        return "0s"
    return f"{duration(job.eta_seconds)} (~{local_time(now + timedelta(seconds=job.eta_seconds), now)})"


def progress_label(shots: ShotCounts) -> str:
    cached = f" ({shots.cached} cached)" if shots.cached else ""
    return f"{shots.done}/{shots.total}{cached}"


def jobs_table(jobs: Sequence[JobSummary], now: datetime) -> RenderableType:
    if not jobs:
        return Text("No jobs yet: submit a shot list to render, then `farm status` shows it here.")
    table = Table(title="Recent jobs", title_justify="left")
    for column, justify in (
        ("job", "right"),
        ("project / episode", "left"),
        ("state", "left"),
        ("done", "right"),
        ("progress", "left"),
        ("failed", "right"),
        ("running", "right"),
        ("submitted", "left"),
        ("by", "left"),
        ("ETA", "left"),
        ("GPU-h", "right"),
    ):
        table.add_column(column, justify=justify)  # type: ignore[arg-type]
    for job in jobs:
        table.add_row(
            str(job.id),
            f"{job.project} {job.episode}".strip(),
            state_text(job.state),
            progress_label(job.shots),
            ProgressBar(total=1.0, completed=job.shots.fraction_done, width=20),
            Text(str(job.shots.failed), style="bold red" if job.shots.failed else ""),
            str(job.shots.running),
            local_time(job.submitted_at, now),
            job.submitted_by,
            eta(job, now),
            f"{job.gpu_hours:.2f}",
        )
    return table


AUTO_LIST_LIMIT = 100
"""A job with more shots lists only its running ones unless asked (--state, --all): nobody reads 10,000 rows."""
ROWS_SHOWN = 40
"""Rows per table on a page nobody asked to be long (failures, scenes, running shots of a big job); rich
takes about a millisecond a row, and a morning status should appear at once."""


def job_view(detail: JobDetail, *, chosen_by_user: bool = True) -> RenderableType:
    """The whole page for one job: header, progress, failures, scenes, then the shots ``detail`` holds.
    With ``chosen_by_user=False`` (the default listing) long tables are cut and say how to see the rest."""
    now = detail.as_of
    job = detail.job
    parts: list[RenderableType] = [_header(job, now), _progress(job, now)]
    if detail.failures:
        parts.append(_failures_table(detail.failures))
    parts.append(_scenes_table(detail))
    shots = detail.shots if chosen_by_user else detail.shots[:ROWS_SHOWN]
    if shots:
        parts.append(_shots_table(shots, now, total=job.shots.total))
    hidden = job.shots.total - len(shots)
    if hidden and not chosen_by_user:
        more_running = len(detail.shots) - len(shots)
        running_hint = f" ({more_running} of them running: --state running)" if more_running else ""
        parts.append(
            Text(f"{hidden} other shots not listed{running_hint}; --state STATE or --all lists them", style="dim")
        )
    if detail.latest_edit is not None:
        edit = detail.latest_edit
        parts.append(
            Text.assemble(
                ("Edit ", "bold"),
                f"v{edit.version} ({local_time(edit.created_at, now)}): continuity ",
                (edit.verdict, VERDICT_STYLES.get(edit.verdict, "yellow")),
                f"  {edit.video_path}",
            )
        )
    return Group(*parts)


def _header(job: JobSummary, now: datetime) -> RenderableType:
    title = Text.assemble(
        (f"Job {job.id}", "bold"),
        f"  {job.project} {job.episode}  ",
        state_text(job.state),
        f"  ({job.quality}, priority {job.priority})",
    )
    lines = [
        title,
        Text(f"shot list {job.shot_list_path}", style="dim"),
        Text(
            f"submitted {local_time(job.submitted_at, now)} by {job.submitted_by}"
            f" · started {local_time(job.started_at, now)} · finished {local_time(job.finished_at, now)}"
        ),
    ]
    if job.driver_id:
        age = (now - job.driver_heartbeat_at).total_seconds() if job.driver_heartbeat_at else None
        lines.append(Text(f"driver {job.driver_id} · last heartbeat {duration(age)} ago", style="dim"))
    return Group(*lines)


def _progress(job: JobSummary, now: datetime) -> RenderableType:
    shots = job.shots
    grid = Table.grid(padding=(0, 1))
    grid.add_column()
    grid.add_column()
    grid.add_row(
        ProgressBar(total=1.0, completed=shots.fraction_done, width=40),
        Text(f"{shots.fraction_done:.0%}", style="bold"),
    )
    speed = f"{job.frames_per_second:.1f} frames/s per worker" if job.frames_per_second else "no speed measured yet"
    summary = Text.assemble(
        f"shots {progress_label(shots)} done · ",
        (f"{shots.failed} failed", "bold red" if shots.failed else ""),
        f" · {shots.running} running · {shots.queued} queued · {shots.cancelled} cancelled\n",
        f"frames {shots.frames_done}/{shots.frames_total} · {speed} · ETA {eta(job, now)} · GPU {job.gpu_hours:.2f} h",
    )
    return Group(grid, summary)


def _failures_table(failures: Sequence[ShotRow]) -> RenderableType:
    table = Table(title=f"Failed shots ({len(failures)})", title_justify="left", title_style="bold red")
    for column in ("shot", "scene", "attempts", "worker", "error"):
        table.add_column(column, overflow="fold")
    for shot in failures[:ROWS_SHOWN]:
        table.add_row(shot.shot_id, shot.scene_id, str(shot.attempts), _worker(shot), shot.last_error or "-")
    if len(failures) > ROWS_SHOWN:
        table.caption = f"{len(failures) - ROWS_SHOWN} more: --state failed lists them all"
    return table


def _scenes_table(detail: JobDetail) -> RenderableType:
    """Every scene of a job with few; otherwise the first scenes still in work (a finished scene needs no
    attention), and a caption for the rest."""
    scenes = list(detail.scenes)
    if len(scenes) > ROWS_SHOWN:
        scenes = [scene for scene in scenes if scene.shots.done < scene.shots.total][:ROWS_SHOWN]
    table = Table(title="Scenes", title_justify="left")
    if len(scenes) < len(detail.scenes):
        finished = sum(scene.shots.done == scene.shots.total for scene in detail.scenes)
        table.title = f"Scenes ({len(scenes)} of {len(detail.scenes)} listed, {finished} finished)"
    for column in ("scene", "shots", "done", "running", "queued", "failed", "cancelled", "progress", "GPU-h"):
        table.add_column(column, justify="left" if column in ("scene", "progress") else "right")
    for scene in scenes:
        counts = scene.shots
        table.add_row(
            scene.scene_id,
            str(counts.total),
            progress_label(counts),
            str(counts.running),
            str(counts.queued),
            Text(str(counts.failed), style="bold red" if counts.failed else ""),
            str(counts.cancelled),
            ProgressBar(total=1.0, completed=counts.fraction_done, width=16),
            f"{scene.gpu_seconds / 3600:.2f}",
        )
    return table


def _shots_table(shots: Sequence[ShotRow], now: datetime, *, total: int) -> RenderableType:
    title = "Shots" if len(shots) == total else f"Shots ({len(shots)} of {total})"
    table = Table(title=title, title_justify="left")
    for column, justify in (
        ("#", "right"),
        ("scene", "left"),
        ("shot", "left"),
        ("state", "left"),
        ("attempts", "right"),
        ("duration", "right"),
        ("worker", "left"),
        ("progress", "right"),
        ("last error", "left"),
        ("artifact", "left"),
    ):
        table.add_column(column, justify=justify, overflow="fold")  # type: ignore[arg-type]
    for shot in shots:
        progress = f"{shot.progress:.0%}" if shot.state is ShotState.RUNNING and shot.progress is not None else ""
        if progress and shot.phase:
            progress += f" {shot.phase}"
        table.add_row(
            str(shot.edit_order + 1),
            shot.scene_id,
            shot.shot_id,
            state_text(shot.state, cached=shot.cached),
            str(shot.attempts),
            _duration(shot),
            _worker(shot),
            progress,
            Text(shot.last_error or "", style="red"),
            shot.artifact_path or "",
        )
    return table


def _duration(shot: ShotRow) -> str:
    """The attempt's wall time, and how much of it the model took when the worker measured it."""
    model = (shot.timings or {}).get("render")
    text = duration(shot.duration_seconds)
    return f"{text} (model {duration(model)})" if model is not None and shot.state is not ShotState.RUNNING else text


def _worker(shot: ShotRow) -> str:
    if shot.node is None:
        return "-"
    return f"{shot.node} ({shot.device})" if shot.device else shot.node


def event_lines(events: Sequence[EventRecord], *, color: bool) -> Iterator[str]:
    """The audit log as one aligned line per event, oldest first, in local time: greppable, and quick to
    print for a job with a hundred thousand events."""
    if not events:
        return
    by_width = max(len(event.changed_by) for event in events)
    kind_width = max(len(event.kind) for event in events)
    shot_width = max(len(event.shot_id or "") for event in events)
    for event in events:
        attempt = f"#{event.attempt_no}" if event.attempt_no else ""
        change = ""
        if event.old_state or event.new_state:
            change = f"{_styled(event.old_state or '(new)', color)} -> {_styled(event.new_state or '', color)}"
        yield (
            f"{event.id:>7}  {event.at.astimezone():%Y-%m-%d %H:%M:%S}  {event.changed_by:<{by_width}}  "
            f"{event.kind:<{kind_width}}  {event.shot_id or '':<{shot_width}} {attempt:>3}  {change}"
            + (f"  {event.message}" if event.message else "")
        ).rstrip()


def _styled(state: str, color: bool) -> str:
    style = STATE_STYLES.get(state, "")
    if not color or not style:
        return state
    return click.style(state, fg=style.split()[-1], bold="bold" in style, dim=style == "dim")


def job_is_finished(state: JobState) -> bool:
    return state in FINISHED_JOB_STATES
