"""What pyproject.toml declares is what farm imports: nothing undeclared, nothing declared for nothing.

Every import under farm/ (at the top of a module or inside a function) that is not the standard library
or farm itself must come from a distribution in ``[project] dependencies`` (the light install) or in the
``render`` extra, and every such distribution must be imported by farm unless the short allow-lists below
say why not. The two lists do not overlap, and farm.install.RENDER_MODULES (what a light install reports
as missing) names exactly the render extra's imports; tests/test_light_install.py shows the light commands
run without them.
"""

from __future__ import annotations

import ast
import importlib.metadata
import re
import subprocess
import sys
import tomllib
from collections import defaultdict
from functools import cache
from pathlib import Path

from farm.install import RENDER_EXTRA, RENDER_MODULES
from tests.shotlists import REPO

FARM = REPO / "farm"

DECLARED_FOR_ANOTHER_REASON = {
    "psycopg": "the PostgreSQL driver SQLAlchemy loads for a postgresql+psycopg:// URL",
    "otio-cmx3600-adapter": "an OpenTimelineIO plug-in, found by its adapter name (cmx_3600) for edit.edl",
    "otio-fcp-adapter": "an OpenTimelineIO plug-in, found by its adapter name (fcp_xml) for edit.xml",
    "otio-aaf-adapter": "an OpenTimelineIO plug-in, found by its adapter name (AAF) for edit.aaf",
    "peft": "diffusers imports it to load the wan_audio model's LoRAs (load_lora_weights)",
    "face-recognition-models": "dlib's model files, located by path; never imported (its __init__ needs pkg_resources)",
    "python-multipart": "FastAPI parses the multipart bodies of bundle uploads (POST /api/jobs) with it",
    "audioop-lts": "pydub (farm.media.speech) imports audioop, which left the standard library in Python 3.13",
}
"""Declared dependencies farm never imports by name, and why each is needed all the same."""

PROVIDED_BY = {
    "dlib": "dlib-bin",
}
"""Import names whose distribution's metadata does not say so (dlib-bin's top_level.txt names only its
extension module, _dlib_pybind11, though the wheel installs the ``dlib`` package)."""


def canonical(name: str) -> str:
    """A distribution name as PEP 503 compares them: ``PyYAML``, ``pyyaml`` and ``py_yaml`` are one."""
    return re.sub(r"[-_.]+", "-", name).lower()


def declared(pyproject: Path = REPO / "pyproject.toml", *, part: str | None = None) -> set[str]:
    """The distributions farm needs at run time: the light ``dependencies`` and the render extra's, or,
    with ``part`` (``"light"`` or an extra's name), one of them."""
    project = tomllib.loads(pyproject.read_text())["project"]
    parts = {"light": project["dependencies"], **project.get("optional-dependencies", {})}
    requirements = parts[part] if part else [*parts["light"], *parts.get(RENDER_EXTRA, [])]
    names = set()
    for requirement in requirements:
        match = re.match(r"\s*([A-Za-z0-9][A-Za-z0-9._-]*)", requirement)
        assert match, f"pyproject.toml: cannot read the requirement {requirement!r}"
        names.add(canonical(match.group(1)))
    return names


def third_party_imports(root: Path = FARM) -> dict[str, list[str]]:
    """Top-level import names outside the standard library and farm -> where each is imported (file:line)."""
    found: dict[str, list[str]] = defaultdict(list)
    for module in sorted(root.rglob("*.py")):
        tree = ast.parse(module.read_text(), filename=str(module))
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            else:
                continue
            for name in names:
                top = name.split(".")[0]
                if top not in sys.stdlib_module_names and top not in {"farm", "__future__"}:
                    found[top].append(f"{module.relative_to(root.parent)}:{node.lineno}")
    return dict(found)


@cache
def installed_providers() -> dict[str, list[str]]:
    return importlib.metadata.packages_distributions()


def distributions_providing(import_name: str) -> set[str]:
    if import_name in PROVIDED_BY:
        return {canonical(PROVIDED_BY[import_name])}
    return {canonical(name) for name in installed_providers().get(import_name, [])}


def undeclared_imports(root: Path = FARM, pyproject: Path = REPO / "pyproject.toml") -> list[str]:
    dependencies = declared(pyproject)
    undeclared = []
    for name, where in sorted(third_party_imports(root).items()):
        providers = distributions_providing(name)
        if not providers & dependencies:
            source = ", ".join(sorted(providers)) or "no installed distribution"
            undeclared.append(f"{name} ({source}) is imported at {where[0]} but not declared")
    return undeclared


def unused_dependencies(root: Path = FARM, pyproject: Path = REPO / "pyproject.toml") -> list[str]:
    imported = {provider for name in third_party_imports(root) for provider in distributions_providing(name)}
    return sorted(declared(pyproject) - imported - set(DECLARED_FOR_ANOTHER_REASON))


def test_every_third_party_import_is_a_declared_dependency() -> None:
    undeclared = undeclared_imports()
    assert not undeclared, "\n".join(undeclared)


def test_every_declared_dependency_is_imported_or_says_why_not() -> None:
    unused = unused_dependencies()
    assert not unused, f"declared in pyproject.toml but imported nowhere in farm/: {', '.join(unused)}"


def test_the_allow_lists_hold_only_what_they_must() -> None:
    dependencies = declared()
    imported = {provider for name in third_party_imports() for provider in distributions_providing(name)}
    for name in DECLARED_FOR_ANOTHER_REASON:
        assert name in dependencies, f"{name} is allow-listed but no longer declared"
        assert name not in imported, f"{name} is imported after all; drop it from the allow-list"
    for module, distribution in PROVIDED_BY.items():
        files = importlib.metadata.distribution(distribution).files or []
        assert any(file.parts[0] == module for file in files), f"{distribution} does not install {module}"


def test_an_import_inside_a_function_counts_and_a_declared_stranger_is_reported(tmp_path: Path) -> None:
    """Both directions can fail: scipy imported (inside a function) but undeclared, pyyaml declared but unused."""
    package = tmp_path / "farm"
    package.mkdir()
    (package / "meter.py").write_text("import numpy\n\n\ndef weigh():\n    from scipy.signal import lfilter\n")
    pyproject = tmp_path / "pyproject.toml"
    pyproject.write_text('[project]\nname = "x"\ndependencies = ["numpy>=1.26", "PyYAML>=6"]\n')

    assert undeclared_imports(package, pyproject) == ["scipy (scipy) is imported at farm/meter.py:5 but not declared"]
    assert unused_dependencies(package, pyproject) == ["pyyaml"]


def test_faces_load_without_pkg_resources_so_setuptools_is_no_runtime_dependency() -> None:
    """face_recognition_models' __init__ imports pkg_resources (gone from setuptools 81): farm must not run it."""
    code = (
        "import sys; sys.modules['pkg_resources'] = None\n"
        "from farm.media.faces import preload_face_models\n"
        "preload_face_models()\n"
        "assert 'face_recognition_models' not in sys.modules\n"
    )
    completed = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=False)
    assert completed.returncode == 0, completed.stderr


def test_the_light_install_and_the_render_extra_do_not_overlap() -> None:
    light, render = declared(part="light"), declared(part=RENDER_EXTRA)

    assert light and render
    assert not light & render, f"declared in both: {sorted(light & render)}"
    assert {"torch", "ray", "diffusers", "transformers", "scipy"} <= render
    assert not light & {"torch", "ray", "diffusers", "transformers", "scipy", "scikit-image"}


def test_the_render_modules_farm_reports_missing_are_the_render_extras_imports() -> None:
    """farm.install names the modules a light install lacks; they must track pyproject's render extra."""
    render = declared(part=RENDER_EXTRA)
    from_render = {name for name in third_party_imports() if distributions_providing(name) & render}

    assert set(RENDER_MODULES) == from_render
