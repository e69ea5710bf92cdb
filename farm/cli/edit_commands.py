"""``farm assemble``: a new edit version of a finished job, with its continuity report."""

from __future__ import annotations

import click

from farm.cli.options import json_option, print_json, settings_from, settings_options, stdout
from farm.errors import EXIT_OK, EXIT_WORK_FAILED

loudness_option = click.option(
    "--loudness",
    type=click.FloatRange(-70, 0),
    default=-16.0,
    show_default=True,
    metavar="LUFS",
    help="Integrated loudness target of the edit's dialogue (BS.1770; peaks kept under -1 dBTP).",
)

_VERDICT_STYLE = {"pass": "green", "warn": "yellow", "fail": "red"}


def print_edit(edit) -> None:
    outcome = edit.outcome
    style = _VERDICT_STYLE.get(edit.verdict, "white")
    flagged = [r for r in outcome.results if r.verdict.value in ("fail", "warn")]
    stdout.print(
        f"edit v{edit.version} of job {edit.job_id}: continuity [{style}]{edit.verdict}[/] "
        f"({len(flagged)} flagged of {len(outcome.results)} checks)",
        highlight=False,
    )
    for result in flagged[:10]:
        colour = _VERDICT_STYLE[result.verdict.value]
        stdout.print(f"  [{colour}]{result.verdict.value:>4}[/] {result.check}: {result.message}", highlight=False)
    if len(flagged) > 10:
        stdout.print(f"  ... {len(flagged) - 10} more in the report")
    stdout.print(f"  video   {outcome.assembly.path}", highlight=False)
    stdout.print(f"  otio    {outcome.timeline.otio}", highlight=False)
    if outcome.timeline.edl:
        stdout.print(f"  edl     {outcome.timeline.edl}", highlight=False)
    stdout.print(f"  report  {outcome.report.html}", highlight=False)


@click.command()
@click.argument("job", type=int)
@loudness_option
@json_option
@settings_options
def assemble(job: int, loudness: float, as_json: bool, **flags: object) -> None:
    """Assemble a finished job into a new edit version: edit.mp4, edit.otio, report.html."""
    from farm.db.session import open_database
    from farm.edit.job_edit import assemble_job

    settings = settings_from(**flags)
    db = open_database(settings.database_url)
    edit = assemble_job(db, settings, job, loudness_lufs=loudness, actor=settings.user)
    if as_json:
        print_json(
            {
                "job": job,
                "version": edit.version,
                "verdict": edit.verdict,
                "video": str(edit.outcome.assembly.path),
                "otio": str(edit.outcome.timeline.otio),
                "edl": str(edit.outcome.timeline.edl) if edit.outcome.timeline.edl else None,
                "report": str(edit.outcome.report.html),
                "checks": [result.to_json() for result in edit.outcome.results],
            }
        )
    else:
        print_edit(edit)
    raise SystemExit(EXIT_WORK_FAILED if edit.verdict == "fail" else EXIT_OK)


COMMANDS = [assemble]
