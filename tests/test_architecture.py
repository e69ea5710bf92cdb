"""The folder tree is the architecture: imports only go down, and the database layer stays light.

The contracts live in pyproject.toml (``[tool.importlinter]``) and import-linter checks them; these tests
run it on the package, show it catches an upward import planted in a copy, and check that no part of
farm sits outside the floors.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

from farm.settings import REPO_ROOT

PYPROJECT = REPO_ROOT / "pyproject.toml"


def lint_imports(root: Path) -> subprocess.CompletedProcess[str]:
    """import-linter over the ``farm`` package found under ``root``, with the project's contracts."""
    code = "import sys; from importlinter.cli import lint_imports; sys.exit(lint_imports(config_filename=sys.argv[1]))"
    return subprocess.run(
        [sys.executable, "-c", code, str(PYPROJECT)],
        env={**os.environ, "PYTHONPATH": str(root)},
        cwd=root,
        capture_output=True,
        text=True,
        timeout=300,
    )


def layers() -> list[str]:
    contracts = tomllib.loads(PYPROJECT.read_text())["tool"]["importlinter"]["contracts"]
    return next(contract for contract in contracts if contract["type"] == "layers")["layers"]


def test_every_import_contract_is_kept() -> None:
    result = lint_imports(REPO_ROOT)

    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    assert "BROKEN" not in result.stdout and result.stdout.count("KEPT") >= 3


def test_an_upward_import_breaks_the_layers_contract(tmp_path: Path) -> None:
    shutil.copytree(REPO_ROOT / "farm", tmp_path / "farm", ignore=shutil.ignore_patterns("__pycache__"))
    kinds = tmp_path / "farm" / "db" / "kinds.py"
    kinds.write_text(kinds.read_text() + "\nfrom farm.jobs import Farm  # an upward import\n")

    result = lint_imports(tmp_path)

    assert result.returncode != 0
    assert "Imports only go down BROKEN" in result.stdout
    assert "farm.db.kinds -> farm.jobs" in result.stdout


def test_every_part_of_farm_is_on_a_floor() -> None:
    named = {name.strip() for layer in layers() for name in layer.replace(":", "|").split("|")}
    entries = [path for path in (REPO_ROOT / "farm").iterdir() if path.name not in ("__init__.py", "__main__.py")]
    parts = {
        f"farm.{path.stem if path.is_file() else path.name}"
        for path in entries
        if path.suffix == ".py" or (path / "__init__.py").is_file()
    }

    assert parts == named


def test_importing_the_database_layer_loads_no_heavy_library() -> None:
    modules = [f"farm.db.{path.stem}" for path in (REPO_ROOT / "farm" / "db").glob("*.py") if path.stem != "__init__"]
    heavy = ("torch", "numpy", "PIL", "jsonschema", "yaml", "ray")
    code = (
        "import importlib, json, sys\n"
        f"for name in {modules!r}: importlib.import_module(name)\n"
        f"print(json.dumps(sorted(m for m in {heavy!r} if m in sys.modules)))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], env={**os.environ, "PYTHONPATH": str(REPO_ROOT)}, capture_output=True, text=True
    )

    assert result.returncode == 0, result.stderr
    assert len(modules) >= 10
    assert json.loads(result.stdout) == []
