"""The public Python API: docs/python-api.md's examples run as written, and every public name is documented."""

from __future__ import annotations

import inspect
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from farm import jobs
from farm.settings import REPO_ROOT

DOC = REPO_ROOT / "docs" / "python-api.md"


def doc_script() -> str:
    """The page's Python blocks, in order: one script."""
    return "\n\n".join(re.findall(r"```python\n(.*?)```", DOC.read_text(), flags=re.DOTALL))


@pytest.mark.ray
def test_the_python_api_page_runs_as_written(tmp_path: Path) -> None:
    script = tmp_path / "python_api_examples.py"
    script.write_text(doc_script())
    env = {
        **os.environ,
        "FARM_DATA_DIR": str(tmp_path / "data"),
        "FARM_DATABASE_URL": "",
        "FARM_RAY_ADDRESS": "",
        "PYTHONPATH": str(REPO_ROOT),
    }

    result = subprocess.run(
        [sys.executable, str(script)], cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=900
    )

    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-5000:]
    assert "continuity pass" in result.stdout or "continuity warn" in result.stdout
    assert "refused: job 9999 is not in the database" in result.stdout
    assert (tmp_path / "data" / "edits" / "job-1" / "v002" / "edit.mp4").is_file()


def test_the_page_has_an_example_for_every_step() -> None:
    script = doc_script()
    for call in ("open_farm(", ".validate(", ".plan(", ".submit(", ".render(", ".status(", ".events(",
                 ".latest_edit(", ".jobs(", ".assemble(", ".cancel(", ".retry("):  # fmt: skip
        assert call in script, call


def test_every_public_name_is_documented_and_every_farm_method_has_an_example() -> None:
    for name in jobs.__all__:
        assert (getattr(jobs, name).__doc__ or "").strip(), f"{name} has no docstring of its own"
    methods = [
        (name, member)
        for name, member in inspect.getmembers(jobs.Farm, inspect.isfunction)
        if not name.startswith("_") and name not in ("close", "database")
    ]
    assert len(methods) >= 12
    for name, member in methods:
        assert "Example::" in (member.__doc__ or ""), f"Farm.{name} has no example"
    assert "Example::" in (jobs.open_farm.__doc__ or "")
