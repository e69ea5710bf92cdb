"""What this installation of farm holds: the light install, or the render side too.

``pip install avatarfarm`` is the light install, for anyone who writes or submits shot lists, on Linux,
macOS or Windows: validate, plan, submit, status, logs and the client of a farm manager (``--server``).
``pip install 'avatarfarm[render]'`` adds the render side: torch, Ray, diffusers and the rest of what a
worker, a job's driver, assembly and the farm manager (``farm serve``) import. A command of the render side
run on a light install says so, and how to install it, instead of dying on an import.
"""

from __future__ import annotations

import importlib.util

from farm.errors import MissingExtra

DISTRIBUTION = "avatarfarm"
"""farm's name on the package index (``farm`` there is another project); the import package is ``farm``."""

RENDER_EXTRA = "render"

RENDER_INSTALL = f"pip install '{DISTRIBUTION}[{RENDER_EXTRA}]'"
"""The command that adds the render side (torch's CPU or CUDA wheel first: see the README's Install)."""

RENDER_MODULES = frozenset(
    {
        "aaf2",
        "accelerate",
        "diffusers",
        "fastapi",
        "ftfy",
        "jinja2",
        "prometheus_client",
        "pydantic",
        "pyloudnorm",
        "ray",
        "safetensors",
        "scipy",
        "skimage",
        "starlette",
        "tokenizers",
        "torch",
        "transformers",
        "uvicorn",
    }
)
"""The import names farm takes from the render extra's distributions (tests/test_dependencies.py keeps this
equal to pyproject.toml's ``render`` extra)."""


def missing_render_modules() -> list[str]:
    """The render side's modules this installation cannot import, found without importing any of them."""
    return sorted(name for name in RENDER_MODULES if not _findable(name))


def _findable(name: str) -> bool:
    try:
        return importlib.util.find_spec(name) is not None
    except ModuleNotFoundError:  # an import hook that refuses the name says so instead of returning None
        return False


def require_render_side(command: str) -> None:
    """Raise MissingExtra, naming ``command``, unless the render side is installed."""
    missing = missing_render_modules()
    if missing:
        raise MissingExtra(command, missing, RENDER_INSTALL)


def as_missing_extra(exc: BaseException, command: str) -> MissingExtra | None:
    """``exc`` as a MissingExtra when it is a missing module of the render side's, else None."""
    if not isinstance(exc, ModuleNotFoundError):
        return None
    top = (exc.name or "").partition(".")[0]
    return MissingExtra(command, [top], RENDER_INSTALL) if top in RENDER_MODULES else None
