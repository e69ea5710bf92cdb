"""Options shared by several commands, and the one place flags become a Settings object."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import click
import orjson
from rich.console import Console

from farm.settings import DATABASE_URL_VARIABLE, Settings, has_password, resolve_settings

if TYPE_CHECKING:
    from farm.cli.client import FarmClient
    from farm.jobs import Farm

F = TypeVar("F", bound=Callable[..., Any])


# Piped output (a log file, less, CI) gets wide tables instead of rich's 80-column default.
def _width(stream: object) -> int | None:
    """A terminal's own width; piped, ``COLUMNS`` if set (a script choosing a width), else wide enough that a
    table is not folded into a file or a pipe."""
    if getattr(stream, "isatty", lambda: False)():
        return None
    columns = os.environ.get("COLUMNS", "")
    return int(columns) if columns.isdigit() and int(columns) >= 40 else 220


stdout = Console(soft_wrap=True, width=_width(sys.stdout))
stderr = Console(stderr=True, soft_wrap=True, width=_width(sys.stderr))

PASSWORD_ON_COMMAND_LINE = (
    "farm: warning: the --db URL holds a password, which every user of this machine can read (ps) and your "
    f"shell history keeps; put the URL in {DATABASE_URL_VARIABLE} instead, or the password in ~/.pgpass (or "
    f"the file PGPASSFILE names). --db without the password still finds the one in {DATABASE_URL_VARIABLE} "
    "when it names the same user, host and database."
)


def settings_options(function: F) -> F:
    """--config, --data-dir, --db and --models-dir, each falling back to FARM_*, then the config file, then
    defaults."""
    decorators = [
        click.option(
            "--config",
            type=click.Path(path_type=Path, dir_okay=False),
            help="The farm's config file [env FARM_CONFIG; default <data dir>/farm.toml].",
        ),
        click.option(
            "--data-dir",
            type=click.Path(path_type=Path, file_okay=False),
            help="Where artifacts, edits and the default database live [env FARM_DATA_DIR].",
        ),
        click.option(
            "--db",
            "database_url",
            metavar="URL",
            callback=_warn_of_a_password,
            help="SQLAlchemy URL, e.g. postgresql+psycopg://farm@db/farm; keep its password in FARM_DATABASE_URL "
            "or ~/.pgpass [env FARM_DATABASE_URL].",
        ),
        click.option(
            "--models-dir",
            type=click.Path(path_type=Path, file_okay=False, exists=True),
            help="Directory of model manifests [env FARM_MODELS_DIR].",
        ),
    ]
    for decorator in reversed(decorators):
        function = decorator(function)
    return function


def _warn_of_a_password(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    """Warn, not refuse: the command still runs (the password is already in the history), and says where the
    password should go next time."""
    if value and has_password(value):
        click.echo(PASSWORD_ON_COMMAND_LINE, err=True)
    return value


def address_option(function: F) -> F:
    return click.option(
        "--address",
        "ray_address",
        metavar="HOST:PORT",
        help="Ray cluster to use ('auto' finds a local one); default starts Ray locally [env FARM_RAY_ADDRESS].",
    )(function)


def json_option(function: F) -> F:
    return click.option("--json", "json_output", is_flag=True, help="Print machine-readable JSON.")(function)


def server_options(function: F) -> F:
    """--server and --token: talk to a farm manager's HTTP API instead of the database."""
    decorators = [
        click.option(
            "--server",
            metavar="URL",
            help="A farm manager's API (http://host:8765): no database or Ray needed here [env FARM_SERVER].",
        ),
        click.option("--token", metavar="TOKEN", help="The API token for --server [env FARM_TOKEN]."),
    ]
    for decorator in reversed(decorators):
        function = decorator(function)
    return function


def client_from(server: str | None, token: str | None, flags: Mapping[str, Any]) -> FarmClient | None:
    """The HTTP client of the farm manager that --server (or FARM_SERVER, or the config file's server.url)
    names; None to use the database."""
    from farm.settings import resolve_server

    resolved = resolve_server(server=server, token=token, config=flags.get("config"), data_dir=flags.get("data_dir"))
    if resolved is None:
        return None
    from farm.cli.client import FarmClient

    return FarmClient(resolved)


_RESOLVED: list[Settings] = []
"""The settings this command resolved (its flags), so that a crash log goes to the data dir it was given."""


def settings_from(**flags: Any) -> Settings:
    settings = resolve_settings(**{key: value for key, value in flags.items() if value is not None})
    _RESOLVED[:] = [settings]
    return settings


def resolved_settings() -> Settings | None:
    """The settings the running command resolved from its flags, None before it did."""
    return _RESOLVED[0] if _RESOLVED else None


def farm_from(**flags: Any) -> Farm:
    """The Farm the command's settings flags describe (the one way every command reaches a job)."""
    from farm.jobs import Farm

    return Farm(settings_from(**flags))


def json_bytes(payload: Any) -> bytes:
    """``payload`` as indented UTF-8 JSON. Dataclass records (a status's shot rows) are written from their
    fields, datetimes as ISO 8601 and enums by value, natively; anything else unknown as its ``str``."""
    return orjson.dumps(payload, default=str, option=orjson.OPT_INDENT_2 | orjson.OPT_NON_STR_KEYS)


def print_json(payload: Any) -> None:
    click.echo(json_bytes(payload))
