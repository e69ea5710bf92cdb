"""``farm token`` and ``farm show`` as an admin types them; listing on a farm with no database creates none."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from farm.cli import cli
from tests.db_records import make_farm
from tests.shotlists import TEMPLATE, make_project


@pytest.fixture
def farm_cli(database_url: str, tmp_path: Path) -> Callable[..., Result]:
    def run(*args: str) -> Result:
        return CliRunner().invoke(cli, [*args, "--data-dir", str(tmp_path / "data"), "--db", database_url])

    return run


def test_token_create_prints_the_token_once_and_list_and_revoke_manage_it(
    farm_cli: Callable[..., Result], database_url: str, tmp_path: Path
) -> None:
    created = farm_cli("token", "create", "alice", "--role", "editor", "--json")
    listed = farm_cli("token", "list")
    revoked = farm_cli("token", "revoke", "alice")
    again = farm_cli("token", "revoke", "alice")

    assert created.exit_code == 0, created.output
    token = json.loads(created.output)["token"]
    assert "alice" in listed.output and "editor" in listed.output and token not in listed.output
    assert revoked.exit_code == 0 and "alice's token is revoked" in revoked.output
    assert again.exit_code == 2 and "no live token is named 'alice'" in again.output
    with make_farm(database_url, tmp_path / "data") as farm:
        assert farm.verify_token(token) is None


def test_a_new_token_is_printed_for_a_person_with_how_to_use_it(farm_cli: Callable[..., Result]) -> None:
    created = farm_cli("token", "create", "pat", "--role", "producer")

    assert created.exit_code == 0, created.output
    assert "token for pat (producer); it is shown only now" in created.output
    assert "--token or FARM_TOKEN" in created.output


def test_show_sets_a_shows_settings_and_lists_them_with_gpu_hours(
    farm_cli: Callable[..., Result], database_url: str, tmp_path: Path, make_job: Callable[..., int]
) -> None:
    with make_farm(database_url, tmp_path / "data") as farm:
        make_job(farm.database(write=True))

    changed = farm_cli("show", "Test Show", "--share", "2", "--gpu-quota", "4", "--gpu-hour-budget", "10")
    cleared = farm_cli("show", "Test Show", "--gpu-quota", "none", "--json")
    listed = farm_cli("show")

    assert changed.exit_code == 0, changed.output
    assert json.loads(cleared.output)["shows"][0] == {
        **json.loads(cleared.output)["shows"][0],
        "share": 2.0,
        "gpu_quota": None,
        "gpu_hour_budget": 10.0,
        "gpu_hours_used": 0.0,
        "jobs": 1,
    }
    row = next(line for line in listed.output.splitlines() if "Test Show" in line)
    assert [cell.strip() for cell in row.split("│")[1:-1]] == ["Test Show", "2", "-", "10", "0.00", "10.00", "1"]


def test_show_without_a_name_cannot_change_anything(farm_cli: Callable[..., Result]) -> None:
    result = farm_cli("show", "--share", "2")

    assert result.exit_code == 2 and "name the show to change" in result.output


@pytest.mark.parametrize("command", [("token", "list"), ("show",)])
def test_listing_on_a_farm_without_a_database_creates_none(tmp_path: Path, command: tuple[str, ...]) -> None:
    data = tmp_path / "data"

    result = CliRunner().invoke(cli, [*command, "--data-dir", str(data)])

    assert result.exit_code == 2
    assert "farm.db" in result.output
    assert not data.exists() or list(data.iterdir()) == []


def test_plan_and_submit_say_when_a_show_would_go_over_its_budget_at_the_learned_costs(
    farm_cli: Callable[..., Result], tmp_path: Path
) -> None:
    shot_list = make_project(tmp_path / "project", TEMPLATE)
    assert farm_cli("show", "Test Show", "--gpu-hour-budget", "0.001").exit_code == 0

    planned = farm_cli("plan", str(shot_list))
    submitted = farm_cli("submit", str(shot_list), "--json")
    again = farm_cli("submit", str(shot_list))

    assert planned.exit_code == 0, planned.output
    assert "show Test Show: budget 0.001 GPU-h, 0.000 used, 0.000 queued" in planned.output
    assert "would exceed it by" in planned.output
    outlook = json.loads(submitted.output)["budget"]
    assert outlook["committed_hours"] > outlook["budget_hours"] and outlook["exceeds"]
    assert "its queued shots would exceed the budget" in again.output and "--gpu-hour-budget" in again.output
