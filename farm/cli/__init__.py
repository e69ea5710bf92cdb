"""The ``farm`` command: a thin shell over the library (parse -> call -> print).

Exit status: 0 success, 1 the work failed, 2 bad input or usage. A FarmError prints its message and
no traceback; an unexpected exception prints one line and writes the traceback to a crash log. A command
of the render side run on the light install (no torch, Ray, ...) says which extra to install.
"""

from __future__ import annotations

import importlib
import os
import sys
import time
import traceback
from pathlib import Path
from typing import Any

import click

from farm import __version__, files
from farm.errors import EXIT_WORK_FAILED, FarmError
from farm.install import as_missing_extra
from farm.settings import debug_requested, default_data_dir, resolve_settings

# Each command's module (under farm.cli), imported when the command runs or --help lists it: `farm status`
# loads SQLAlchemy and the status views, not the planner, numpy and jsonschema that `farm plan` needs.
_COMMAND_MODULES = {
    "validate": "shotlist_commands",
    "plan": "shotlist_commands",
    "render": "render_commands",
    "submit": "render_commands",
    "cancel": "render_commands",
    "retry": "render_commands",
    "assemble": "edit_commands",
    "review": "edit_commands",
    "conform": "edit_commands",
    "status": "db_commands",
    "events": "db_commands",
    "notifications": "db_commands",
    "logs": "log_commands",
    "token": "admin_commands",
    "show": "admin_commands",
    "gc": "admin_commands",
    "db": "db_commands",
    "model": "model_commands",
    "serve": "serve_commands",
}


class FarmGroup(click.Group):
    """Loads commands lazily, and maps farm's exceptions to exit codes and one-line messages."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(_COMMAND_MODULES)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        module_name = _COMMAND_MODULES.get(cmd_name)
        if module_name is None:
            return None
        module = importlib.import_module(f"farm.cli.{module_name}")
        return next(command for command in module.COMMANDS if command.name == cmd_name)

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except FarmError as exc:
            click.echo(str(exc), err=True)
            ctx.exit(exc.exit_code)
        except (click.exceptions.Exit, click.exceptions.Abort, click.ClickException):
            raise
        except KeyboardInterrupt:
            click.echo("interrupted", err=True)
            ctx.exit(130)
        except Exception as exc:
            missing = (
                as_missing_extra(exc, f"farm {ctx.invoked_subcommand}")
                if isinstance(exc, ModuleNotFoundError)
                else None
            )
            if missing is not None:
                click.echo(str(missing), err=True)
                ctx.exit(missing.exit_code)
            if debug_requested():
                raise
            crash_log = _write_crash_log(exc)
            click.echo(f"farm: internal error: {type(exc).__name__}: {exc}", err=True)
            click.echo(f"farm: the traceback is in {crash_log}; set FARM_DEBUG=1 to print it", err=True)
            ctx.exit(EXIT_WORK_FAILED)


def _write_crash_log(exc: BaseException) -> Path:
    """The traceback, in the logs folder of the data dir the command was given (its --data-dir, else
    FARM_DATA_DIR or the config file's, else the default)."""
    from farm.cli.options import resolved_settings

    given = resolved_settings()
    try:
        logs = given.logs_dir if given is not None else resolve_settings().logs_dir
    except FarmError:
        logs = default_data_dir(os.environ) / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    path = logs / f"crash-{time.strftime('%Y%m%d-%H%M%S')}-{os.getpid()}.log"
    files.write_text(path, "".join(traceback.format_exception(exc)), fsync=False)
    return path


@click.group(cls=FarmGroup, context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 110})
@click.version_option(__version__, prog_name="farm")
def cli() -> None:
    """farm: render YAML shot lists into lip-synced avatar video on a Ray cluster."""


def main() -> None:
    sys.exit(cli.main(prog_name="farm"))
