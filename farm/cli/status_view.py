"""How ``farm status`` and ``farm events`` look in a terminal: rich tables built from the query records.

Written for a producer checking renders in the morning: failures and their messages first, then the
job's progress bar, ETA and GPU-hours, then scenes and shots. Times are shown in local time.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Generic, TypeVar

import click
from rich.console import Group, RenderableType
from rich.progress_bar import ProgressBar
from rich.table import Table
from rich.text import Text

from farm import defaults
from farm.cli.styles import PRODUCER_LABELS, PRODUCER_STYLES, STATE_STYLES, VERDICT_STYLES
from farm.db.records import EventRecord, JobDetail, JobSummary, SceneRollup, ShotCounts, ShotRow
from farm.db.states import FINISHED_JOB_STATES, JobState, ShotState
from farm.jobs import ProducerStatus

if TYPE_CHECKING:
    from farm.db.notifications import NotificationRecord

R = TypeVar("R")
"""A table's row record (a job's summary, a shot's row)."""


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
    if not driven(job, now):
        return "none: nobody drives it (start farm serve)"
    if job.eta_seconds is None:
        return "unknown"
    if job.eta_seconds == 0:
        return "0s"
    return f"{duration(job.eta_seconds)} (~{local_time(now + timedelta(seconds=job.eta_seconds), now)})"


def driven(job: JobSummary, now: datetime) -> bool:
    """Whether a live process (a farm manager, a farm render) drives the job: its lease's heartbeat is fresh."""
    stale_after = defaults.STALE_AFTER_HEARTBEATS * defaults.HEARTBEAT_SECONDS
    beat = job.driver_heartbeat_at
    return job.driver_id is not None and beat is not None and (now - beat).total_seconds() < stale_after


def progress_label(shots: ShotCounts) -> str:
    cached = f" ({shots.cached} cached)" if shots.cached else ""
    return f"{shots.done}/{shots.total}{cached}"


@dataclass(frozen=True)
class _Column(Generic[R]):
    """A column of a table: its header, how it aligns, how important it is (1 = always shown), and the cell
    it shows for a row (a job, a shot)."""

    header: str
    justify: str
    rank: int
    cell: Callable[[R, datetime], RenderableType]
    width: Callable[[R, datetime], int] | None = None
    """Cell width when the cell is not text (a progress bar); text cells are measured."""
    fold: bool = False
    """Wrap a long cell over several lines (an error message) instead of cutting it."""
    most: int | None = None
    """The widest a folded column is counted when choosing columns (it wraps beyond)."""


_JOB_COLUMNS: tuple[_Column[JobSummary], ...] = (
    _Column("job", "right", 1, lambda job, now: str(job.id)),
    _Column("project / episode", "left", 1, lambda job, now: f"{job.project} {job.episode}".strip()),
    _Column("status", "left", 1, lambda job, now: producer_text(job)),
    _Column("edit", "left", 2, lambda job, now: edit_text(job)),
    _Column("done", "right", 1, lambda job, now: progress_label(job.shots)),
    _Column("failed", "right", 2, lambda job, now: failed_text(job.shots)),
    _Column("state", "left", 3, lambda job, now: state_text(job.state)),
    _Column("ETA", "left", 4, lambda job, now: eta(job, now)),
    _Column("GPU-h", "right", 5, lambda job, now: f"{job.gpu_hours:.2f}"),
    _Column("submitted", "left", 6, lambda job, now: local_time(job.submitted_at, now)),
    _Column("by", "left", 6, lambda job, now: job.submitted_by),
    _Column("running", "right", 7, lambda job, now: str(job.shots.running)),
    _Column(
        "progress",
        "left",
        8,
        lambda job, now: ProgressBar(total=1.0, completed=job.shots.fraction_done, width=20),
        width=lambda job, now: 20,
    ),
)
"""In the order shown; a narrow terminal drops the highest ranks first (80 columns keeps ranks 1-4)."""


def failed_text(shots: ShotCounts) -> Text:
    return Text(str(shots.failed), style="bold red" if shots.failed else "")


def producer_text(job: JobSummary) -> Text:
    status = job.producer_status
    return Text(PRODUCER_LABELS[status], style=PRODUCER_STYLES[status])


def edit_text(job: JobSummary) -> Text:
    """``v3 fail``: the newest edit's version and verdict, or ``-`` before the first."""
    if job.edit_version is None or job.edit_verdict is None:
        return Text("-")
    review = f" {job.edit_review}" if job.edit_review else ""
    return Text(f"v{job.edit_version} {job.edit_verdict}{review}", style=VERDICT_STYLES[job.edit_verdict])


def _cell_width(column: _Column[R], row: R, now: datetime) -> int:
    if column.width is not None:
        return column.width(row, now)
    cell = column.cell(row, now)
    width = cell.cell_len if isinstance(cell, Text) else len(str(cell))
    return min(width, column.most) if column.most is not None else width


def columns_that_fit(columns: Sequence[_Column[R]], rows: Sequence[R], now: datetime, width: int) -> list[_Column[R]]:
    """The most important columns whose widest cells fit ``width`` (a column costs 3 more: borders, padding),
    kept in table order: a narrow terminal drops the least important columns rather than wrap every row."""
    widths = {
        column.header: max([len(column.header), *(_cell_width(column, row, now) for row in rows)]) for column in columns
    }
    chosen: set[str] = set()
    used = 1
    for column in sorted(columns, key=lambda column: column.rank):
        cost = widths[column.header] + 3
        if column.rank > 1 and used + cost > width:
            continue
        chosen.add(column.header)
        used += cost
    return [column for column in columns if column.header in chosen]


def _table(title: str, columns: Sequence[_Column[R]], rows: Sequence[R], now: datetime, width: int) -> Table:
    table = Table(title=title, title_justify="left")
    chosen = columns_that_fit(columns, rows, now, width)
    for column in chosen:
        table.add_column(column.header, justify=column.justify, overflow="fold" if column.fold else "ellipsis")  # type: ignore[arg-type]
    for row in rows:
        table.add_row(*(column.cell(row, now) for column in chosen))
    return table


def jobs_table(jobs: Sequence[JobSummary], now: datetime, *, width: int = 200) -> RenderableType:
    """The recent jobs, the producer's status and the edit's verdict first; as many other columns as fit."""
    if not jobs:
        return Text("No jobs yet: submit a shot list to render, then `farm status` shows it here.")
    return _table("Recent jobs", _JOB_COLUMNS, jobs, now, width)


AUTO_LIST_LIMIT = 100
"""A job with more shots lists only its running ones unless asked (--state, --all): nobody reads 10,000 rows."""
ROWS_SHOWN = 20
"""Rows per table on a page nobody asked to be long (failures, scenes, running shots of a big job): the page
of a big job fits about two screens, each table says how to list the rest, and it appears at once (rich
takes one to three milliseconds a row)."""


def job_view(detail: JobDetail, *, chosen_by_user: bool = True, width: int = 200) -> RenderableType:
    """The whole page for one job: header, progress, failures, scenes, then the shots ``detail`` holds.
    With ``chosen_by_user=False`` (the default listing) long tables are cut and say how to see the rest;
    the shot tables keep the columns that fit ``width``, most important first."""
    now = detail.as_of
    job = detail.job
    parts: list[RenderableType] = [_header(job, now), _progress(job, now)]
    if detail.failures:
        parts.append(_failures_table(detail.failures, now, width))
    parts.append(_scenes_table(detail, width))
    shots = detail.shots if chosen_by_user else detail.shots[:ROWS_SHOWN]
    if shots:
        parts.append(_shots_table(shots, now, total=job.shots.total, width=width))
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
    if job.state not in FINISHED_JOB_STATES and not driven(job, now):
        lines.append(
            Text("no one drives this job: start `farm serve` (or farm render --resume JOB)", style="bold yellow")
        )
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


_FAILURE_COLUMNS: tuple[_Column[ShotRow], ...] = (
    _Column("shot", "left", 1, lambda shot, now: shot.shot_id),
    _Column("scene", "left", 3, lambda shot, now: shot.scene_id),
    _Column("attempts", "right", 2, lambda shot, now: str(shot.attempts)),
    _Column("worker", "left", 4, lambda shot, now: _worker(shot)),
    _Column("error", "left", 1, lambda shot, now: shot.last_error or "-", fold=True, most=40),
    _Column("log", "left", 5, lambda shot, now: shot.log_path or "-", fold=True),
)
"""A failed shot's error always shows (wrapped if long); its log path when there is room (``farm logs``)."""


def _failures_table(failures: Sequence[ShotRow], now: datetime, width: int) -> RenderableType:
    table = _table(f"Failed shots ({len(failures)})", _FAILURE_COLUMNS, failures[:ROWS_SHOWN], now, width)
    table.title_style = "bold red"
    if len(failures) > ROWS_SHOWN:
        table.caption = f"{len(failures) - ROWS_SHOWN} more: --state failed lists them all"
    return table


_SCENE_COLUMNS: tuple[_Column[SceneRollup], ...] = (
    _Column("scene", "left", 1, lambda scene, now: scene.scene_id),
    _Column("shots", "right", 5, lambda scene, now: str(scene.shots.total)),
    _Column("done", "right", 1, lambda scene, now: progress_label(scene.shots)),
    _Column("running", "right", 3, lambda scene, now: str(scene.shots.running)),
    _Column("queued", "right", 4, lambda scene, now: str(scene.shots.queued)),
    _Column("failed", "right", 2, lambda scene, now: failed_text(scene.shots)),
    _Column("cancelled", "right", 7, lambda scene, now: str(scene.shots.cancelled)),
    _Column(
        "progress",
        "left",
        6,
        lambda scene, now: ProgressBar(total=1.0, completed=scene.shots.fraction_done, width=16),
        width=lambda scene, now: 16,
    ),
    _Column("GPU-h", "right", 5, lambda scene, now: f"{scene.gpu_seconds / 3600:.2f}"),
)


def _scenes_table(detail: JobDetail, width: int) -> RenderableType:
    """Every scene of a job with few; otherwise the first scenes still in work (a finished scene needs no
    attention), and a caption for the rest."""
    scenes = list(detail.scenes)
    if len(scenes) > ROWS_SHOWN:
        scenes = [scene for scene in scenes if scene.shots.done < scene.shots.total][:ROWS_SHOWN]
    title = "Scenes"
    if len(scenes) < len(detail.scenes):
        finished = sum(scene.shots.done == scene.shots.total for scene in detail.scenes)
        title = f"Scenes ({len(scenes)} of {len(detail.scenes)} listed, {finished} finished)"
    return _table(title, _SCENE_COLUMNS, scenes, detail.as_of, width)


def _progress_cell(shot: ShotRow) -> str:
    progress = f"{shot.progress:.0%}" if shot.state is ShotState.RUNNING and shot.progress is not None else ""
    return f"{progress} {shot.phase}" if progress and shot.phase else progress


_SHOT_COLUMNS: tuple[_Column[ShotRow], ...] = (
    _Column("#", "right", 1, lambda shot, now: str(shot.edit_order + 1)),
    _Column("scene", "left", 4, lambda shot, now: shot.scene_id),
    _Column("shot", "left", 1, lambda shot, now: shot.shot_id),
    _Column("state", "left", 1, lambda shot, now: state_text(shot.state, cached=shot.cached)),
    _Column("attempts", "right", 5, lambda shot, now: str(shot.attempts)),
    _Column("duration", "right", 2, lambda shot, now: _duration(shot)),
    _Column("worker", "left", 6, lambda shot, now: _worker(shot)),
    _Column("progress", "right", 2, lambda shot, now: _progress_cell(shot)),
    _Column("last error", "left", 3, lambda shot, now: Text(shot.last_error or "", style="red"), fold=True, most=30),
    _Column("artifact", "left", 9, lambda shot, now: shot.artifact_path or ""),
)
"""What a shot is doing first; the artifact's path only where the page is wide (and in --json)."""


def _shots_table(shots: Sequence[ShotRow], now: datetime, *, total: int, width: int) -> RenderableType:
    title = "Shots" if len(shots) == total else f"Shots ({len(shots)} of {total})"
    return _table(title, _SHOT_COLUMNS, shots, now, width)


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


def job_succeeded(job: JobSummary) -> bool:
    """Done, with an edit that passed its checks (or only warned), and not sent back: what a script waiting
    on a job (``farm status JOB --watch --exit-status``) may go on with."""
    return job.producer_status in (ProducerStatus.WAITING_FOR_APPROVAL, ProducerStatus.DONE)


def notifications_table(sent: Sequence[NotificationRecord], now: datetime) -> RenderableType:
    """What was sent, newest first: when, about which job, to whom, and how the receiver answered."""
    if not sent:
        return Text("No notifications yet: farm.toml's [[notifications.*]] say who hears of what (docs/config.md).")
    table = Table(title="Notifications", title_justify="left")
    for column in ("id", "when", "job", "topic", "channel", "to", "state", "tries", "answer"):
        table.add_column(column)
    styles = {"delivered": "green", "pending": "yellow", "failed": "bold red"}
    for note in sent:
        table.add_row(
            str(note.id),
            local_time(note.created_at, now),
            str(note.job_id or "-"),
            note.topic,
            str(note.channel),
            note.target,
            Text(str(note.state), style=styles.get(str(note.state), "")),
            str(note.attempts),
            (note.last_status or "-") + (f" {note.last_response[:40]}" if note.last_response else ""),
        )
    return table
