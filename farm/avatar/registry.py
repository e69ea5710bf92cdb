"""Adapters by name: farm's own, plus any a package registers under the ``farm.adapters`` entry point.

A manifest's ``adapter`` field names one of these, or gives an import path ``package.module:Class``
directly, so a studio can try its own adapter without packaging it. Adapter modules keep heavy imports
(torch, diffusers) inside ``load`` so that planning, which only needs ``code_version``, stays fast.
"""

from __future__ import annotations

import importlib
from importlib.metadata import entry_points

from farm.avatar.base import AvatarModel
from farm.avatar.manifest import ModelManifest
from farm.errors import ManifestError

BUILTIN_ADAPTERS = {
    "previz": "farm.avatar.previz:PrevizModel",
    "wan_audio": "farm.avatar.wan_audio.adapter:WanAudioModel",
}


def adapter_names() -> list[str]:
    return sorted({*BUILTIN_ADAPTERS, *(ep.name for ep in entry_points(group="farm.adapters"))})


def adapter_class(name: str) -> type[AvatarModel]:
    target = BUILTIN_ADAPTERS.get(name) or (name if ":" in name else None)
    if target is None:
        found = [ep for ep in entry_points(group="farm.adapters") if ep.name == name]
        if not found:
            raise ManifestError(f"no model adapter named '{name}'; known adapters: {', '.join(adapter_names())}")
        return found[0].load()
    module_name, _, class_name = target.partition(":")
    try:
        return getattr(importlib.import_module(module_name), class_name)
    except (ImportError, AttributeError) as exc:
        raise ManifestError(f"model adapter '{name}' cannot be imported ({exc})") from exc


def create_model(manifest: ModelManifest) -> AvatarModel:
    return adapter_class(manifest.adapter)(manifest)
