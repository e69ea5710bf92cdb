"""The light install, simulated in this venv: a ``farm`` process for which the render extra's modules and
the POSIX-only standard modules do not exist, as on a Windows or macOS laptop with ``pip install avatarfarm``.

An import hook at the front of ``sys.meta_path`` refuses those names the way a missing module is refused
(ModuleNotFoundError), before farm is imported; a module already imported by the interpreter's start-up is
dropped first. tests/test_wheel.py installs the real wheel into a real venv of the light dependencies.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from farm.install import RENDER_MODULES
from tests.shotlists import REPO

POSIX_ONLY = ("pwd", "grp", "fcntl", "resource", "termios")
"""Standard modules Windows lacks that a light command could be tempted to import."""

UNAVAILABLE = tuple(sorted({*POSIX_ONLY, *RENDER_MODULES}))

_HOOK = """\
import sys

UNAVAILABLE = frozenset(sys.argv[1].split(","))


class Unavailable:
    def find_spec(self, name, path=None, target=None):
        if name.partition(".")[0] in UNAVAILABLE:
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
        return None


for loaded in [name for name in sys.modules if name.partition(".")[0] in UNAVAILABLE]:
    del sys.modules[loaded]
sys.meta_path.insert(0, Unavailable())
"""

RUN_FARM = _HOOK + "sys.argv = ['farm', *sys.argv[2:]]\nfrom farm.cli import main\nmain()\n"
IMPORT_MODULES = _HOOK + "import importlib\nfor name in sys.argv[2:]:\n    importlib.import_module(name)\n"


def light_python(code: str, *args: str, cwd: Path = REPO, **env: str) -> subprocess.CompletedProcess[str]:
    """Run ``code`` (one of the scripts above) with ``args`` in a process without the unavailable modules."""
    return subprocess.run(
        [sys.executable, "-c", code, ",".join(UNAVAILABLE), *args],
        env={**os.environ, "PYTHONPATH": str(REPO), **env},
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=180,
    )


def light_farm(*args: str, cwd: Path = REPO, **env: str) -> subprocess.CompletedProcess[str]:
    """``farm ARGS`` as the light install on Windows runs it."""
    return light_python(RUN_FARM, *args, cwd=cwd, **env)
