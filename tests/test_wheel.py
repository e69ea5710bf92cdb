"""The wheel, built from the sources and installed into a fresh venv outside the checkout with only the light
dependencies: ``farm validate`` and ``farm submit`` work on the demo, ``farm model list`` shows the shipped
manifests, and torch, Ray and diffusers are nowhere.

Offline: the light distributions are put into the venv as links to this venv's installed files (what pip
installed here; the index holds no dlib-bin), chosen by the wheel's own Requires-Dist, and ``pip check``
then confirms those alone meet the wheel's requirements.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import zipfile
from importlib.metadata import distribution
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from farm.install import DISTRIBUTION, RENDER_INSTALL
from tests.shotlists import REPO

pytestmark = pytest.mark.wheel


def build_wheel(out: Path) -> Path:
    """The wheel of a copy of the package's sources (no schemas/ or models/ beside it, as in an sdist)."""
    source = out / "source"
    shutil.copytree(REPO / "farm", source / "farm", ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(REPO / name, source / name)
    offline = ["--quiet", "--no-deps", "--no-build-isolation", "--no-index"]
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", *offline, "--wheel-dir", str(out / "dist"), str(source)],
        check=True,
        capture_output=True,
        timeout=300,
    )
    return next((out / "dist").glob(f"{DISTRIBUTION}-*.whl"))


def light_closure(requirements: list[str]) -> set[str]:
    """The installed distributions these requirements need, with what they need in turn (extras followed)."""
    found: set[str] = set()
    pending = [(Requirement(text), "") for text in requirements]
    while pending:
        requirement, extra = pending.pop()
        if requirement.marker is not None and not requirement.marker.evaluate({"extra": extra}):
            continue
        name = canonicalize_name(requirement.name)
        for wanted in requirement.extras:
            pending += [(Requirement(text), wanted) for text in distribution(name).requires or []]
        if name in found:
            continue
        found.add(name)
        pending += [(Requirement(text), "") for text in distribution(name).requires or []]
    return found


def link_installed(name: str, site_packages: Path) -> None:
    """Place the installed distribution ``name`` into ``site_packages`` as links to its files."""
    installed = distribution(name)
    for file in installed.files or []:
        if file.parts[0] == ".." or "__pycache__" in file.parts:
            continue
        target = site_packages / file
        if not target.exists():
            target.parent.mkdir(parents=True, exist_ok=True)
            target.symlink_to(Path(installed.locate_file(file)).resolve())


def test_the_checkouts_schemas_and_models_are_links_to_what_the_package_ships() -> None:
    """One copy of each: the top-level folders the editors and the docs name point into the package."""
    assert (REPO / "schemas" / "shotlist.schema.json").resolve() == REPO / "farm" / "shotlist" / "shotlist.schema.json"
    assert (REPO / "models").resolve() == REPO / "farm" / "model_manifests"
    assert not [path for path in (REPO / "schemas").iterdir() if not path.is_symlink()]


def test_the_wheel_installed_outside_the_checkout_validates_submits_and_lists_models(tmp_path: Path) -> None:
    wheel = build_wheel(tmp_path / "build")
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
        metadata = archive.read(next(n for n in names if n.endswith(".dist-info/METADATA"))).decode()
    assert "farm/shotlist/shotlist.schema.json" in names and "farm/model_manifests/previz.yaml" in names
    requires = [line.split(":", 1)[1].strip() for line in metadata.splitlines() if line.startswith("Requires-Dist:")]
    light = [text for text in requires if "extra ==" not in text]
    closure = light_closure(light)
    assert closure.isdisjoint({"torch", "ray", "diffusers", "transformers", "scipy"}), sorted(closure)

    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=120)
    python = venv / "bin" / "python"
    site_packages = Path(
        subprocess.run(
            [python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
            check=True,
            capture_output=True,
            text=True,
        ).stdout.strip()
    )
    for name in sorted(closure):
        link_installed(name, site_packages)
    pip = [sys.executable, "-m", "pip", "--python", str(python)]
    installed = subprocess.run(
        [*pip, "install", "--quiet", "--no-deps", "--no-index", str(wheel)], capture_output=True, text=True
    )
    checked = subprocess.run([*pip, "check"], capture_output=True, text=True)
    assert installed.returncode == 0, installed.stderr
    assert checked.returncode == 0, checked.stdout + checked.stderr

    project = tmp_path / "project"
    shutil.copytree(REPO / "shots" / "demo", project)
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    env |= {"FARM_DATA_DIR": str(tmp_path / "data"), "PATH": f"{venv / 'bin'}{os.pathsep}{env['PATH']}"}

    def farm(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [venv / "bin" / "farm", *args], cwd=project, env=env, capture_output=True, text=True, timeout=180
        )

    where = subprocess.run(
        [python, "-c", "import farm, importlib.util as u; print(farm.__file__, u.find_spec('torch'))"],
        cwd=project,
        env=env,
        capture_output=True,
        text=True,
    )
    validated = farm("validate", "episode.yaml")
    models = farm("model", "list", "--json")
    submitted = farm("submit", "episode.yaml", "--json")
    refused = farm("render", "episode.yaml")

    assert where.stdout.startswith(str(site_packages)) and where.stdout.strip().endswith("None"), where
    assert validated.returncode == 0, validated.stderr[-3000:]
    assert "episode.yaml: valid (3 scenes, 7 shots" in validated.stdout
    assert models.returncode == 0, models.stderr[-3000:]
    assert {model["name"] for model in json.loads(models.stdout)} == {"previz", "stableavatar-1.3b", "tiny-avatar"}
    assert submitted.returncode == 0 and json.loads(submitted.stdout)["job"] == 1, submitted.stderr[-3000:]
    assert refused.returncode == 2 and RENDER_INSTALL in refused.stderr, refused.stderr[-3000:]
