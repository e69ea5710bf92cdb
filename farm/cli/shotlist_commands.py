"""``farm validate`` and ``farm plan``: check a shot list and show what would render."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import click

from farm.cli.options import farm_from, json_option, print_json, settings_options, stderr, stdout
from farm.errors import EXIT_BAD_INPUT, EXIT_OK
from farm.jobs import Quality
from farm.paths import display_path
from farm.plan import Plan, ShotTask
from farm.shotlist.load import ValidationReport
from farm.shotlist.timecode import format_clock
from farm.shotlist.types import CameraMove, CameraSpec

if TYPE_CHECKING:
    from rich.table import Table

    from farm.jobs.estimate import ModelRate

max_seconds_option = click.option(
    "--max-shot-seconds",
    type=click.FloatRange(min=0, min_open=True),
    help="Longest shot accepted, in seconds [env FARM_MAX_SHOT_SECONDS; default 600].",
)


@click.command()
@click.argument("files", nargs=-1, required=True, type=click.Path(path_type=Path, dir_okay=False))
@json_option
@max_seconds_option
@settings_options
def validate(files: tuple[Path, ...], json_output: bool, max_shot_seconds: float | None, **flags: object) -> None:
    """Check shot lists: schema, references, media files and timecodes. Exit 2 if any is invalid.

    \b
    Examples:
      farm validate shots/ep01.yaml shots/ep02.yaml
      farm validate shots/ep01.yaml --json
    """
    farm = farm_from(max_shot_seconds=max_shot_seconds, **flags)
    reports = [farm.validate(path) for path in files]
    if json_output:
        print_json(
            {
                "valid": all(report.ok for report in reports),
                "files": [_report_json(report) for report in reports],
            }
        )
    else:
        for report in reports:
            _print_report(report)
    raise SystemExit(EXIT_OK if all(report.ok for report in reports) else EXIT_BAD_INPUT)


def _report_json(report: ValidationReport) -> dict[str, object]:
    return {
        "file": display_path(report.path),
        "valid": report.ok,
        "shots": len(report.shot_list.shots) if report.shot_list else None,
        "findings": [finding.to_json() for finding in report.findings],
    }


def _print_report(report: ValidationReport) -> None:
    for finding in report.findings:
        click.echo(finding.format(), err=finding.severity == "error")
    if report.shot_list is not None:
        shot_list = report.shot_list
        seconds = sum((shot.audio.duration for shot in shot_list.shots), start=0)
        stdout.print(
            f"{display_path(report.path)}: [green]valid[/green] ({len(shot_list.scenes)} scenes, "
            f"{len(shot_list.shots)} shots, {format_clock(seconds)} of dialogue)",
            highlight=False,
        )
    else:
        stderr.print(
            f"{display_path(report.path)}: [red]invalid[/red] ({_count(len(report.errors), 'error')})", highlight=False
        )


@click.command()
@click.argument("file", type=click.Path(path_type=Path, dir_okay=False))
@click.option(
    "--quality",
    type=click.Choice([q.value for q in Quality]),
    help="Plan every shot at this quality, whatever the shot list says.",
)
@json_option
@max_seconds_option
@settings_options
def plan(file: Path, quality: str | None, json_output: bool, max_shot_seconds: float | None, **flags: object) -> None:
    """Show the per-shot render tasks a shot list becomes: frames, audio slice, model and cache key, which
    shots the farm already has in its cache, and what the rest will cost in GPU-hours.

    \b
    Examples:
      farm plan shots/ep01.yaml
      farm plan shots/ep01.yaml --quality final --json
    """
    farm = farm_from(max_shot_seconds=max_shot_seconds, **flags)
    the_plan = farm.plan(file, quality=quality)
    cost = farm.plan_cost(the_plan)
    if json_output:
        print_json({**the_plan.to_json(), "cost": cost.to_json()})
        return
    stdout.print(plan_table(the_plan))
    cached = [task.shot_id for task in the_plan.tasks if task.shot_id in cost.cached]
    stdout.print(
        f"cached: {len(cached)} of {len(the_plan.tasks)} shots" + (f" ({', '.join(cached)})" if cached else ""),
        highlight=False,
    )
    stdout.print(f"to render: {cost.to_render_frames} frames, about {cost.gpu_hours:.3f} GPU-hours", highlight=False)
    for rate in cost.rates.values():
        stdout.print(
            f"  {rate.model}: {rate.seconds_per_frame:.4g} GPU-s per frame, {rate_source(rate)}", highlight=False
        )
        for gpu, seconds in sorted(rate.by_gpu.items()):
            stdout.print(f"    on {gpu}: {seconds:.4g} GPU-s per frame", highlight=False)
    for model, recipe in sorted(cost.recipes.items()):
        stdout.print(f"  {model} recipe: {recipe}", highlight=False)
    if cost.budget is not None:
        stdout.print(cost.budget.describe(), style="red" if cost.budget.exceeds else None, highlight=False)


def rate_source(rate: ModelRate) -> str:
    """Where ``farm plan``'s rate for a model comes from, in words."""
    if rate.measured_attempts:
        size = "at this size" if "size" in rate.level else "scaled by pixels from other sizes"
        if rate.at_these_steps:
            size += " and steps"
        load = f"; model load {rate.load_seconds:.1f} s per worker" if rate.load_seconds is not None else ""
        return f"learned from {rate.measured_attempts} attempts {size}{load}"
    if rate.source == "measured":
        return f"measured over {rate.measured_frames} rendered frames"
    return "the manifest's stuck-timeout rate (no shot rendered yet; an upper bound)"


def describe_camera(camera: CameraSpec) -> str:
    if camera.move is CameraMove.STATIC:
        return camera.move.value
    return f"{camera.move.value} {camera.intensity:.0%}"


def describe_segments(task: ShotTask) -> str:
    """A long take's segments as '3: 512+498+90' (frames each); empty for a shot rendered in one piece."""
    if len(task.segments) < 2:
        return ""
    return f"{len(task.segments)}: " + "+".join(str(count) for count in task.segments)


def _count(number: int, noun: str) -> str:
    return f"{number} {noun}" + ("" if number == 1 else "s")


def plan_table(the_plan: Plan) -> Table:
    from rich.table import Table  # only for the table: plan --json never loads it

    table = Table(title=f"{the_plan.project} {the_plan.episode}".strip() + f" - {display_path(the_plan.shot_list)}")
    for column in (
        "#",
        "scene",
        "shot",
        "character",
        "camera",
        "framing",
        "frames",
        "audio in-out",
        "model",
        "cache key",
        "continues",
        "segments",
    ):
        table.add_column(column, justify="right" if column in {"#", "frames"} else "left")
    for task in the_plan.tasks:
        table.add_row(
            str(task.order + 1),
            task.scene_id,
            task.shot_id,
            _characters_cell(task),
            describe_camera(task.camera),
            task.framing.describe() if task.framing else "centre",
            str(task.frames),
            _audio_cell(task),
            f"{task.model} ({task.quality.value})",
            task.cache_key[:12],
            task.continues or "",
            describe_segments(task),
        )
    seconds = the_plan.total_frames / the_plan.output.fps
    caption = f"{len(the_plan.tasks)} shots, {the_plan.total_frames} frames, {format_clock(seconds)}"
    notes = [f"{task.shot_id}: {w}" for task in the_plan.tasks if task.framing for w in task.framing.warnings]
    table.caption = "\n".join([caption, *notes])
    return table


def _characters_cell(task: ShotTask) -> str:
    """The shot's character; a two-shot's both, with its layout and each face's region."""
    if task.two_shot is None:
        return task.character_id
    lines = [f"two-shot, {task.two_shot.layout.value.replace('_', ' ')}"]
    lines += [
        f"{speaker.character_id} [{', '.join(f'{v:g}' for v in speaker.region)}]" for speaker in task.two_shot.speakers
    ]
    return "\n".join(lines)


def _audio_cell(task: ShotTask) -> str:
    """The shot's audio span; a two-shot's one per speaker, each labelled with its track."""
    slices = [task.audio] if task.two_shot is None else [speaker.audio for speaker in task.two_shot.speakers]
    spans = [f"{format_clock(piece.start_seconds)}-{format_clock(piece.end_seconds)}" for piece in slices]
    if task.two_shot is None:
        return spans[0]
    return "\n".join(["", *(f"{piece.track_id} {span}" for piece, span in zip(slices, spans, strict=True))])


COMMANDS = [validate, plan]
