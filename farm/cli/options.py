"""Options shared by several commands, and the one place flags become a Settings object."""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import click
import orjson
from rich.console import Console

from farm.settings import Settings, resolve_settings

if TYPE_CHECKING:
    from farm.jobs import Farm

F = TypeVar("F", bound=Callable[..., Any])

# Piped output (a log file, less, CI) gets wide tables instead of rich's 80-column default.
stdout = Console(soft_wrap=True, width=None if sys.stdout.isatty() else 220)
stderr = Console(stderr=True, soft_wrap=True, width=None if sys.stderr.isatty() else 220)


def settings_options(function: F) -> F:
    """--data-dir, --db, --models-dir and --address, each falling back to FARM_* then to defaults."""
    decorators = [
        click.option(
            "--data-dir",
            type=click.Path(path_type=Path, file_okay=False),
            help="Where artifacts, edits and the default database live [env FARM_DATA_DIR].",
        ),
        click.option(
            "--db",
            "database_url",
            metavar="URL",
            help="SQLAlchemy URL, e.g. postgresql+psycopg://farm@db/farm [env FARM_DATABASE_URL].",
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


def address_option(function: F) -> F:
    return click.option(
        "--address",
        "ray_address",
        metavar="HOST:PORT",
        help="Ray cluster to use ('auto' finds a local one); default starts Ray locally [env FARM_RAY_ADDRESS].",
    )(function)


def json_option(function: F) -> F:
    return click.option("--json", "json_output", is_flag=True, help="Print machine-readable JSON.")(function)


def settings_from(**flags: Any) -> Settings:
    return resolve_settings(**{key: value for key, value in flags.items() if value is not None})


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
