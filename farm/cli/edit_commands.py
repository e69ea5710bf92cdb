"""``farm assemble``: a new edit version of a finished job, with its continuity report; ``farm review``: a
producer's decision on it."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import click

from farm import defaults
from farm.cli.options import (
    client_from,
    farm_from,
    json_option,
    print_json,
    server_options,
    settings_options,
    stdout,
)
from farm.cli.styles import VERDICT_STYLES
from farm.errors import EXIT_OK, EXIT_WORK_FAILED
from farm.install import require_render_side
from farm.jobs import Verdict
from farm.paths import display_path
from farm.shotlist.timecode import format_clock

if TYPE_CHECKING:
    from farm.jobs.conform import Conformed, ShotChange
    from farm.jobs.edit import JobEdit

loudness_option = click.option(
    "--loudness",
    type=click.FloatRange(-70, 0),
    default=defaults.LOUDNESS_LUFS,
    show_default=True,
    metavar="LUFS",
    help=(
        f"Integrated loudness target of the edit's dialogue (BS.1770; peaks kept under {defaults.TRUE_PEAK_DB:g} dBTP)."
    ),
)


def print_edit(edit: JobEdit, *, retakes_left_to_render: bool = False) -> None:
    """One edit version: its verdict, what was flagged, its files; ``retakes_left_to_render``: the retakes it
    queued were not rendered here (``farm assemble``), so say how to render them. A version that re-uses
    an earlier edit (same content key) says which one."""
    flagged = edit.summary.get("flagged") or []
    checks = edit.summary.get("checks", 0)
    stdout.print(
        f"edit v{edit.version} of job {edit.job_id}: continuity [{VERDICT_STYLES[edit.verdict]}]{edit.verdict}[/] "
        f"({len(flagged)} flagged of {checks} checks)",
        highlight=False,
    )
    if edit.reused is not None:
        stdout.print(
            f"  re-used edit v{edit.reused.version} of job {edit.reused.job_id} (edit {edit.reused.id}): "
            f"same shots and settings, content key {(edit.content_key or '')[:12]}; nothing assembled",
            highlight=False,
        )
    for result in flagged[:10]:
        verdict = Verdict(result["verdict"])
        stdout.print(
            f"  [{VERDICT_STYLES[verdict]}]{verdict.value:>4}[/] {result['check']}: {result['message']}",
            highlight=False,
        )
    if len(flagged) > 10:
        stdout.print(f"  ... {len(flagged) - 10} more in the report")
    files = edit.files
    stdout.print(f"  video   {files.video}", highlight=False)
    for label, path in (("otio", files.otio), ("edl", files.edl), ("xml", files.xml), ("aaf", files.aaf)):
        if path:
            stdout.print(f"  {label:<7} {path}", highlight=False)
    if files.media:
        stdout.print(f"  media   {files.media}", highlight=False)
    for platform, folder in files.platforms.items():
        stdout.print(f"  {platform:<7} {folder}", highlight=False)
    if files.report:
        stdout.print(f"  report  {files.report}", highlight=False)
    retakes = edit.retakes
    if retakes and retakes_left_to_render:
        stdout.print(
            f"  retakes {', '.join(retake.shot_id for retake in retakes)} queued; "
            f"render them with: farm render --resume {edit.job_id}",
            highlight=False,
        )


@click.command()
@click.argument("job", type=int)
@loudness_option
@click.option(
    "--record-start",
    metavar="TIMECODE",
    default=None,
    help="Record timecode of the edit's first frame in its EDL, XML, AAF and OTIO "
    "(default: farm.toml's [editorial] record_start, else 01:00:00:00; HH:MM:SS;FF is drop-frame).",
)
@json_option
@settings_options
def assemble(job: int, loudness: float, record_start: str | None, json_output: bool, **flags: object) -> None:
    """Assemble a finished job into a new edit version: edit.mp4, edit.otio, edit.edl, edit.xml (FCP 7),
    edit.aaf, the shot-named media/ folder and report.html.

    \b
    Examples:
      farm assemble 12
      farm assemble 12 --loudness -14 --json
      farm assemble 12 --record-start 10:00:00:00
    """
    require_render_side("farm assemble")
    edit = farm_from(**flags).assemble(job, loudness_lufs=loudness, record_start=record_start)
    if json_output:
        print_json(
            {
                "job": job,
                "version": edit.version,
                "verdict": edit.verdict,
                "video": str(edit.files.video),
                "otio": str(edit.files.otio) if edit.files.otio else None,
                "edl": str(edit.files.edl) if edit.files.edl else None,
                "xml": str(edit.files.xml) if edit.files.xml else None,
                "aaf": str(edit.files.aaf) if edit.files.aaf else None,
                "media": str(edit.files.media) if edit.files.media else None,
                "platforms": {name: str(folder) for name, folder in edit.files.platforms.items()},
                "report": str(edit.files.report) if edit.files.report else None,
                "retakes": [retake.shot_id for retake in edit.retakes],
                "checks": [result.to_json() for result in edit.outcome.results] if edit.outcome else [],
            }
        )
    else:
        print_edit(edit, retakes_left_to_render=True)
    raise SystemExit(EXIT_WORK_FAILED if edit.verdict is Verdict.FAIL else EXIT_OK)


@click.command()
@click.argument("job", type=int)
@click.argument("decision", type=click.Choice(["approve", "retake"]))
@click.option("--shot", "shots", multiple=True, metavar="ID", help="For a retake: a shot to render again (repeatable).")
@click.option("--comment", "-m", default="", metavar="TEXT", help="What to change (a retake naming shots needs one).")
@click.option("--version", type=click.IntRange(min=1), default=None, help="The edit version (default: the newest).")
@settings_options
@server_options
def review(
    job: int,
    decision: str,
    shots: tuple[str, ...],
    comment: str,
    version: int | None,
    server: str | None,
    token: str | None,
    **flags: object,
) -> None:
    """Approve a job's newest edit, or send shots back: they render again with new seeds, and the next edit
    version waits for review in turn.

    \b
    Examples:
      farm review 12 approve -m "lovely"
      farm review 12 retake --shot sc01_020 -m "too stiff, more energy"
      farm review 12 approve --server http://farm-head:8765
    """
    choice = "approved" if decision == "approve" else "retake"
    client = client_from(server, token, flags)
    if client is not None:
        with client:
            answer = client.review(job, choice, comment=comment, shots=shots, version=version)
        edit_version, status = answer["edit"]["version"], answer["producer_status"]
    else:
        farm = farm_from(**flags)
        edit_version = farm.review(job, choice, comment=comment, shots=shots, version=version).version
        status = farm.status(job, shot_states=()).job.producer_status.value
    sent = f"; {', '.join(shots)} render again" if shots else ""
    stdout.print(f"job {job}: edit v{edit_version} {choice}{sent} (producer status: {status})", highlight=False)


@click.command()
@click.argument("job", type=int)
@click.argument("timeline", type=click.Path(path_type=Path, dir_okay=False))
@click.option(
    "--output",
    "-o",
    type=click.Path(path_type=Path, dir_okay=False),
    help="Where to write the new shot list (default: next to the job's, as NAME.conform-vN.yaml).",
)
@json_option
@settings_options
def conform(job: int, timeline: Path, output: Path | None, json_output: bool, **flags: object) -> None:
    """Bring an editor's re-cut back: write a new version of the job's shot list whose shots' audio in/out and
    order follow TIMELINE (.otio, .edl, or FCP 7 .xml), and print what changed per shot.

    The original shot list is never overwritten; a clip the shot list cannot take writes nothing.
    Rendering the new file re-renders only the re-timed shots and re-uses the rest from the cache.

    \b
    Examples:
      farm conform 12 recut.otio
      farm conform 12 recut.edl -o shots/ep01-director.yaml --json
    """
    conformed = farm_from(**flags).conform(job, timeline, output=output)
    if json_output:
        print_json(conformed.to_json())
    else:
        print_conformed(conformed)


def print_conformed(conformed: Conformed) -> None:
    """What a conform changed, shot by shot, and what rendering its shot list will cost."""
    stdout.print(
        f"job {conformed.job_id} conformed to {display_path(conformed.timeline)}: "
        f"wrote {display_path(conformed.path)} (from {display_path(conformed.source)})",
        highlight=False,
    )
    if not conformed.layout_kept:
        stdout.print("  written as plain YAML: the original's layout could not be edited in place, comments are lost")
    for shot in conformed.shots:
        stdout.print(f"  {shot.shot_id:<12} {describe_change(shot)}", highlight=False)
    cached = len([shot for shot in conformed.shots if not shot.removed]) - len(conformed.renders)
    renders = ", ".join(conformed.renders) or "nothing"
    stdout.print(f"rendering it renders {renders} and re-uses {cached} shots from the cache:", highlight=False)
    stdout.print(f"  farm render {display_path(conformed.path)}", highlight=False)


def describe_change(shot: ShotChange) -> str:
    if shot.removed:
        return f"removed (was #{shot.old_position})"
    parts = []
    if shot.new_in != shot.old_in:
        parts.append(f"in {format_clock(shot.old_in)} -> {format_clock(shot.new_in)}")
    if shot.new_out != shot.old_out:
        parts.append(f"out {format_clock(shot.old_out)} -> {format_clock(shot.new_out)}")
    if parts:
        parts[-1] += f" ({shot.rule})"
    if shot.moved:
        parts.append(f"moved #{shot.old_position} -> #{shot.new_position}")
    if shot.dropped_continues:
        parts.append(f"no longer continues {shot.dropped_continues} (removed)")
    return ", ".join(parts) or "unchanged"


COMMANDS = [assemble, review, conform]
