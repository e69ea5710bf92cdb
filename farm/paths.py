"""How a path is shown to a person: the way they would type it."""

from __future__ import annotations

import os
from pathlib import Path


def display_path(path: Path | str) -> str:
    """The path relative to the working directory when it is below it, else as it is."""
    try:
        return os.path.relpath(path)
    except ValueError:  # another drive on Windows
        return str(path)
