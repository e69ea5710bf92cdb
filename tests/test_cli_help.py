"""Every command explains itself: ``--help`` works, says what the command does, and shows an example."""

from __future__ import annotations

import click
import pytest
from click.testing import CliRunner

from farm.cli import cli


def commands(group: click.Group, prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    found = []
    context = click.Context(group)
    for name in group.list_commands(context):
        command = group.get_command(context, name)
        path = (*prefix, name)
        if isinstance(command, click.Group):
            found += commands(command, path)
        else:
            found.append(path)
    return found


COMMANDS = commands(cli)


def test_the_command_tree_is_the_one_the_readme_documents() -> None:
    assert {" ".join(path) for path in COMMANDS} >= {
        "validate", "plan", "render", "submit", "status", "events", "cancel", "retry", "assemble",
        "model list", "model convert", "model create-tiny", "db upgrade", "db current",
    }  # fmt: skip


@pytest.mark.parametrize("path", COMMANDS, ids=" ".join)
def test_every_command_has_help_with_an_example(path: tuple[str, ...]) -> None:
    result = CliRunner().invoke(cli, [*path, "--help"])

    assert result.exit_code == 0, result.output
    assert "Example" in result.output, f"farm {' '.join(path)} --help shows no example"
    assert f"farm {' '.join(path)}" in result.output.split("Example", 1)[1]
