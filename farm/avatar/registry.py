"""Adapters by name, from one registry: the ``farm.adapters`` entry-point group.

farm's own adapters (previz, wan_audio) register there in pyproject.toml exactly as a studio's packaged
adapter would, so there is one list, not a built-in table plus plug-ins. A manifest's ``adapter`` field
names an entry point, or gives an import path ``package.module:Class`` directly, so a studio can try
its own adapter without packaging it. Adapter modules keep heavy imports (torch, diffusers) inside
``load`` so that planning, which only needs ``code_version``, stays fast.
"""

from __future__ import annotations

import importlib
from importlib.metadata import EntryPoint, entry_points

from farm.avatar.base import AvatarModel
from farm.catalog import ModelManifest
from farm.errors import ManifestError

ENTRY_POINT_GROUP = "farm.adapters"


def registered_adapters() -> dict[str, EntryPoint]:
    """Every adapter registered under the entry-point group, by name."""
    return {entry.name: entry for entry in entry_points(group=ENTRY_POINT_GROUP)}


def adapter_names() -> list[str]:
    return sorted(registered_adapters())


def adapter_class(name: str) -> type[AvatarModel]:
    """The adapter class a manifest's ``adapter`` names: an entry point, or ``package.module:Class``."""
    registered = registered_adapters()
    if name in registered:
        target = registered[name].value
    elif ":" in name:
        target = name
    else:
        known = ", ".join(sorted(registered)) or "none (is farm installed? `pip install -e .` registers them)"
        raise ManifestError(f"no model adapter named '{name}'; known adapters: {known}")
    module_name, _, class_name = target.partition(":")
    try:
        return getattr(importlib.import_module(module_name), class_name)
    except (ImportError, AttributeError) as exc:
        raise ManifestError(f"model adapter '{name}' cannot be imported ({exc})") from exc


def create_model(manifest: ModelManifest) -> AvatarModel:
    return adapter_class(manifest.adapter)(manifest)
