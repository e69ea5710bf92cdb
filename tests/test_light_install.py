"""``pip install avatarfarm``, the light install: validate, plan, submit, status, logs and the client of a
farm manager work with no torch, Ray, diffusers or scipy, and on Windows and macOS (no ``pwd``, ``fcntl``,
``grp``, ``resource``); a command of the render side says which extra to install and changes nothing.

Each test runs farm as a real process in which those modules do not exist (tests/light.py).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from farm.install import RENDER_INSTALL
from tests.light import IMPORT_MODULES, POSIX_ONLY, light_farm, light_python
from tests.shotlists import REPO

CLIENT_MODULES = (
    "farm.settings",
    "farm.jobs",
    "farm.cli",
    "farm.cli.client",
    "farm.cli.shotlist_commands",
    "farm.cli.render_commands",
    "farm.cli.db_commands",
    "farm.cli.log_commands",
    "farm.cli.model_commands",
    "farm.cli.admin_commands",
    "farm.cli.edit_commands",
    # planning a final-quality shot reads the adapter's code version, which must not need torch
    "farm.avatar.wan_audio.adapter",
)


@pytest.fixture
def demo(tmp_path: Path) -> Path:
    """A copy of the demo's shot lists and media, so nothing is written beside the checkout's."""
    shutil.copytree(REPO / "shots" / "demo", tmp_path / "demo")
    return tmp_path / "demo"


def test_the_client_modules_import_without_the_render_side_or_posix_modules() -> None:
    result = light_python(IMPORT_MODULES, *CLIENT_MODULES)

    assert result.returncode == 0, result.stderr[-3000:]


def test_the_hook_makes_a_posix_module_missing_as_on_windows() -> None:
    """The simulation can fail: farm.settings imported pwd at its top until farm ran on Windows."""
    result = light_python(IMPORT_MODULES, *POSIX_ONLY[:1])

    assert result.returncode == 1
    assert "ModuleNotFoundError: No module named 'pwd'" in result.stderr


def test_validate_and_plan_the_demo_on_the_light_install(demo: Path, tmp_path: Path) -> None:
    data = {"FARM_DATA_DIR": str(tmp_path / "data"), "USER": "", "USERNAME": "editor"}

    validated = light_farm("validate", "episode.yaml", cwd=demo, **data)
    planned = light_farm("plan", "episode.yaml", "--json", cwd=demo, **data)

    assert validated.returncode == 0, validated.stderr[-3000:]
    assert "episode.yaml: valid (3 scenes, 7 shots" in validated.stdout
    assert planned.returncode == 0, planned.stderr[-3000:]
    assert len(json.loads(planned.stdout)["shots"]) == 7


def test_submit_status_logs_and_model_list_on_the_light_install(demo: Path, tmp_path: Path) -> None:
    data = {"FARM_DATA_DIR": str(tmp_path / "data")}

    submitted = light_farm("submit", "episode.yaml", "--json", cwd=demo, **data)
    status = light_farm("status", "1", "--json", cwd=demo, **data)
    logs = light_farm("logs", "1", cwd=demo, **data)
    models = light_farm("model", "list", "--json", cwd=demo, **data)

    assert submitted.returncode == 0, submitted.stderr[-3000:]
    assert json.loads(submitted.stdout)["job"] == 1
    assert status.returncode == 0, status.stderr[-3000:]
    assert json.loads(status.stdout)["job"]["state"] == "queued"
    assert logs.returncode == 0 and "no render attempts yet" in logs.stdout, logs.stderr[-3000:]
    assert models.returncode == 0, models.stderr[-3000:]
    assert {model["name"] for model in json.loads(models.stdout)} >= {"previz", "stableavatar-1.3b", "tiny-avatar"}


@pytest.mark.parametrize(
    ("command", "named"),
    [
        (("render", "episode.yaml"), "farm render"),
        (("submit", "episode.yaml", "--driver"), "farm submit --driver"),
        (("serve",), "farm serve"),
    ],
)
def test_a_render_side_command_names_the_extra_and_queues_nothing(
    demo: Path, tmp_path: Path, command: tuple[str, ...], named: str
) -> None:
    data = {"FARM_DATA_DIR": str(tmp_path / "data")}

    result = light_farm(*command, cwd=demo, **data)

    assert result.returncode == 2, result.stderr[-3000:]
    assert f"{named} needs farm's render side" in result.stderr and RENDER_INSTALL in result.stderr
    assert "Traceback" not in result.stderr and result.stderr.count("\n") == 1
    assert not (tmp_path / "data").exists(), "the refused command wrote to the data dir"


def test_an_import_of_the_render_side_deep_in_a_command_is_reported_as_the_missing_extra(tmp_path: Path) -> None:
    """create-tiny imports torch inside the command: the CLI's boundary maps the ModuleNotFoundError."""
    result = light_farm("model", "create-tiny", str(tmp_path / "tiny"), FARM_DATA_DIR=str(tmp_path / "data"))

    assert result.returncode == 2, result.stderr[-3000:]
    assert "farm model needs farm's render side" in result.stderr and RENDER_INSTALL in result.stderr
    assert "internal error" not in result.stderr and not (tmp_path / "tiny").exists()
