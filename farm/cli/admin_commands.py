"""``farm token``, ``farm show`` and ``farm gc``: what an admin sets for the farm manager. API tokens (who may
call the HTTP API, with which role), shows (each show's fair share, GPU quota and GPU-hour budget), and the
artifact store's garbage (renders nothing references any more).

Listing writes nothing: ``farm token list`` and ``farm show`` on a farm with no database say so instead of
creating one.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import click
from click.core import ParameterSource
from rich.table import Table

from farm.cli.options import farm_from, json_option, print_json, settings_options, stdout
from farm.cli.status_view import local_time
from farm.errors import UsageError
from farm.jobs import Role

if TYPE_CHECKING:
    from farm.db.records import ShowInfo
    from farm.jobs import Farm

COMMAND_LINE = ParameterSource.COMMANDLINE
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86_400, "w": 7 * 86_400}


class NumberOrNone(click.ParamType):
    """A number, or ``none`` to clear the setting."""

    def __init__(self, kind: type[int] | type[float]) -> None:
        self.kind = kind
        self.name = f"{kind.__name__}|none"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> int | float | None:
        if isinstance(value, int | float) or value is None:
            return value
        if str(value).strip().lower() == "none":
            return None
        try:
            return self.kind(value)
        except ValueError:
            self.fail(f"{value!r} is not a{'n integer' if self.kind is int else ' number'} (or 'none')", param, ctx)


@click.group()
def token() -> None:
    """API tokens: who may call the farm manager's HTTP API, and with which role."""


@token.command("create")
@click.argument("name")
@click.option(
    "--role",
    type=click.Choice([role.value for role in Role]),
    help="editor: submits and changes its own jobs; producer: reads everything and reviews edits; admin: "
    "everything [default: the config file's people.NAME.role].",
)
@json_option
@settings_options
def create_token(name: str, role: str | None, json_output: bool, **flags: object) -> None:
    """Make a token for NAME and print it, once: the farm keeps only its SHA-256.

    \b
    Example:
      farm token create alice --role editor
    """
    with farm_from(**flags) as farm:
        role = role or _configured_role(farm, name)
        secret = farm.create_token(name, role)
    if json_output:
        print_json({"name": name, "role": role, "token": secret})
        return
    click.echo(f"token for {name} ({role}); it is shown only now, so keep it:\n\n  {secret}\n")
    click.echo("use it with --token or FARM_TOKEN, e.g. farm status --server http://farm-head:8765 --token <token>")


def _configured_role(farm: Farm, name: str) -> str:
    config = farm.settings.config
    person = next((person for person in config.people if person.name == name), None)
    if person is None or person.role is None:
        where = f" or set [people.{name}] role in {config.path}" if config.path else " or list the person in farm.toml"
        raise UsageError(f"farm token create {name}: give --role (editor, producer or admin){where}")
    return person.role


@token.command("list")
@json_option
@settings_options
def list_tokens(json_output: bool, **flags: object) -> None:
    """List the tokens' names, roles and dates (never the tokens themselves).

    \b
    Example:
      farm token list --json
    """
    with farm_from(**flags) as farm:
        tokens = farm.tokens()
    if json_output:
        print_json({"tokens": [entry.to_json() for entry in tokens]})
        return
    if not tokens:
        click.echo("no API tokens yet; make one with: farm token create NAME --role editor")
        return
    now = datetime.now(UTC)
    table = Table(title="API tokens", title_justify="left")
    for column in ("name", "role", "created", "revoked"):
        table.add_column(column)
    for entry in tokens:
        table.add_row(entry.name, entry.role, local_time(entry.created_at, now), local_time(entry.revoked_at, now))
    stdout.print(table)


@token.command("revoke")
@click.argument("name")
@settings_options
def revoke_token(name: str, **flags: object) -> None:
    """Revoke NAME's token: it stops working at once.

    \b
    Example:
      farm token revoke alice
    """
    with farm_from(**flags) as farm:
        farm.revoke_token(name)
    click.echo(f"{name}'s token is revoked")


@click.command()
@click.argument("name", required=False)
@click.option("--share", type=click.FloatRange(min=0, min_open=True), help="Weight of its fair share (1 = equal).")
@click.option("--gpu-quota", type=NumberOrNone(int), help="Most GPUs its shots hold at once ('none': no limit).")
@click.option("--gpu-hour-budget", type=NumberOrNone(float), help="GPU hours it may spend ('none': no budget).")
@json_option
@settings_options
def show(
    name: str | None,
    share: float | None,
    gpu_quota: Any,
    gpu_hour_budget: Any,
    json_output: bool,
    **flags: object,
) -> None:
    """List the shows (a shot list's project) with their share, GPU quota, budget and GPU hours used, or
    change one show's.

    \b
    Examples:
      farm show
      farm show "Night Shift" --share 2 --gpu-quota 8 --gpu-hour-budget 500
      farm show "Night Shift" --gpu-quota none
    """
    # Given on the command line, not left out: "--gpu-quota none" is None too, and clears the quota.
    context = click.get_current_context()
    given = {"share": share, "gpu_quota": gpu_quota, "gpu_hour_budget": gpu_hour_budget}
    changes = {key: value for key, value in given.items() if context.get_parameter_source(key) is COMMAND_LINE}
    if changes and name is None:
        raise UsageError("name the show to change: farm show NAME --share W --gpu-quota N --gpu-hour-budget H")
    with farm_from(**flags) as farm:
        if changes and name is not None:
            shows: Sequence[ShowInfo] = (farm.set_show(name, **changes),)
        elif name is not None:
            shows = (farm.show(name),)
        else:
            shows = farm.shows()
    if json_output:
        print_json({"shows": [entry.to_json() for entry in shows]})
        return
    if not shows:
        click.echo("no shows yet: a show appears with its first job (a shot list's project)")
        return
    stdout.print(_shows_table(shows))


def _shows_table(shows: Sequence[ShowInfo]) -> Table:
    table = Table(title="Shows", title_justify="left")
    for column, justify in (
        ("show", "left"),
        ("share", "right"),
        ("GPU quota", "right"),
        ("GPU-h budget", "right"),
        ("GPU-h used", "right"),
        ("GPU-h left", "right"),
        ("jobs", "right"),
    ):
        table.add_column(column, justify=justify)  # type: ignore[arg-type]
    for entry in shows:
        left = entry.gpu_hours_left
        table.add_row(
            entry.name if entry.configured else f"{entry.name} (defaults)",
            f"{entry.share:g}",
            "-" if entry.gpu_quota is None else str(entry.gpu_quota),
            "-" if entry.gpu_hour_budget is None else f"{entry.gpu_hour_budget:g}",
            f"{entry.gpu_hours_used:.2f}",
            "-" if left is None else f"{left:.2f}",
            str(entry.jobs),
        )
    return table


class Duration(click.ParamType):
    """An age: a number with a unit, ``30d``, ``12h``, ``90m``, ``45s`` or ``2w`` (a bare number is seconds)."""

    name = "duration"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> float:
        if isinstance(value, int | float):
            return float(value)
        match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([smhdw]?)\s*", str(value).lower())
        if match is None:
            self.fail(f"{value!r} is not an age such as 30d, 12h, 90m or 45s", param, ctx)
        return float(match.group(1)) * _UNIT_SECONDS[match.group(2) or "s"]


@click.command()
@click.option(
    "--older-than",
    type=Duration(),
    default="30d",
    show_default=True,
    help="Only artifacts recorded longer ago than this (30d, 12h, 90m, 45s).",
)
@click.option("--dry-run", is_flag=True, help="Only say what would be removed and how much it would free.")
@json_option
@settings_options
def gc(older_than: float, dry_run: bool, json_output: bool, **flags: object) -> None:
    """Remove the rendered artifacts (rows and files) that no edit or live job references: renders of keys
    that retakes or a re-submitted shot list replaced, and those of failed or cancelled jobs. What a done
    job's latest edit was made from, and what a queued or running job needs, are never removed.

    \b
    Examples:
      farm gc --dry-run
      farm gc --older-than 7d
    """
    with farm_from(**flags) as farm:
        summary = farm.gc(older_than_seconds=older_than, dry_run=dry_run)
    if json_output:
        print_json(summary.to_json())
        return
    verb = "would remove" if dry_run else "removed"
    freed = "would free" if dry_run else "freed"
    click.echo(f"gc {verb} {summary.artifacts} artifact(s) older than {_age(older_than)}; "
               f"{freed} {_size(summary.bytes)}")  # fmt: skip


def _age(seconds: float) -> str:
    for unit in ("w", "d", "h", "m"):
        if seconds >= _UNIT_SECONDS[unit] and seconds % _UNIT_SECONDS[unit] == 0:
            return f"{seconds / _UNIT_SECONDS[unit]:g}{unit}"
    return f"{seconds:g}s"


def _size(count: int) -> str:
    for unit, scale in (("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if count >= scale:
            return f"{count / scale:.1f} {unit}"
    return f"{count} bytes"


COMMANDS = [token, show, gc]
