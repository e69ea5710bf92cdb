"""previz: a talking portrait rendered on the CPU, for timing, blocking and camera checks."""

from __future__ import annotations

from typing import ClassVar

from farm.avatar.manifest import ModelManifest


class PrevizModel:
    code_version: ClassVar[str] = "previz-1"

    def __init__(self, manifest: ModelManifest) -> None:
        self.manifest = manifest
