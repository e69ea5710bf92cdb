"""Media paths as another platform mounts the same storage: ``/mnt/farm`` here is ``Z:\\farm`` on Windows.

The config's ``[[path_map]]`` entries each name one share's root on each platform. An editorial file
written for a platform has every media reference under a known root rewritten to that platform's root,
as the file URL that platform's NLE reads (``file:///Z:/farm/...`` on Windows, ``file://server/share/...``
for a UNC root); a path under no root is left as it is and counted, so the caller can say so.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import PurePosixPath, PureWindowsPath
from urllib.parse import quote

import opentimelineio as otio

from farm.config import PATH_MAP_PLATFORMS, PathMapping


def local_platform() -> str:
    """The platform farm runs on, in the config's words: linux, windows or macos."""
    if sys.platform.startswith("win"):
        return "windows"
    return "macos" if sys.platform == "darwin" else "linux"


@dataclass(frozen=True)
class MappedTimeline:
    timeline: otio.schema.Timeline
    unmapped: tuple[str, ...]
    """Local paths under no mapped root, left as they were."""


def map_timeline(
    timeline: otio.schema.Timeline, mappings: Sequence[PathMapping], *, source: str, target: str
) -> MappedTimeline:
    """A copy of ``timeline`` whose external media references point where ``target`` mounts them."""
    if target not in PATH_MAP_PLATFORMS or source not in PATH_MAP_PLATFORMS:
        raise ValueError(f"platforms are {', '.join(PATH_MAP_PLATFORMS)}; got {source} -> {target}")
    mapped = timeline.deepcopy()
    unmapped: list[str] = []
    for clip in mapped.find_clips():
        reference = clip.media_reference
        if not isinstance(reference, otio.schema.ExternalReference) or not reference.target_url.startswith("file:"):
            continue
        local = otio.url_utils.filepath_from_url(reference.target_url)
        url = mapped_url(local, mappings, source=source, target=target)
        if url is None:
            unmapped.append(local)
        else:
            reference.target_url = url
    return MappedTimeline(mapped, tuple(dict.fromkeys(unmapped)))


def mapped_url(path: str, mappings: Sequence[PathMapping], *, source: str, target: str) -> str | None:
    """The file URL ``target`` opens ``path`` (a ``source`` path) by; None under no root both name."""
    best: tuple[int, str, str] | None = None
    for mapping in mappings:
        here, there = mapping.root(source), mapping.root(target)
        if here is None or there is None:
            continue
        rest = _relative(path, here, windows=source == "windows")
        if rest is not None and (best is None or len(here) > best[0]):
            best = (len(here), there, rest)
    if best is None:
        return None
    _, root, rest = best
    return _windows_url(root, rest) if target == "windows" else _posix_url(root, rest)


def _relative(path: str, root: str, *, windows: bool) -> str | None:
    """``path`` below ``root`` as '/'-joined parts ('' for the root itself); None if it is not below it."""
    flavour = PureWindowsPath if windows else PurePosixPath
    try:
        parts = flavour(path).relative_to(flavour(root)).parts
    except ValueError:
        return None
    return "/".join(parts)


def _posix_url(root: str, rest: str) -> str:
    joined = str(PurePosixPath(root, rest)) if rest else root
    return "file://" + quote(joined)


def _windows_url(root: str, rest: str) -> str:
    """``Z:\\farm`` + ``a/b.mp4`` -> ``file:///Z:/farm/a/b.mp4``; ``\\\\nas\\farm`` -> ``file://nas/farm/...``."""
    joined = PureWindowsPath(root, *rest.split("/")) if rest else PureWindowsPath(root)
    text = str(joined).replace("\\", "/")
    if text.startswith("//"):
        return "file:" + quote(text, safe="/")
    return "file:///" + quote(text, safe="/:")
