"""A new version of a shot list's text: shots re-timed, reordered or removed, everything else kept.

The edit is made in the YAML text at the locations the loader recorded (``LocatedDocument``), so the
editor's comments, quoting and layout survive: a timecode is replaced in place and keeps its form
(``"00:00:04:14"`` stays SMPTE when the new time is a whole frame, ``2.36`` stays seconds); a shot moves
as its block of lines, with the comment lines just above it; a ``continues`` line is dropped when the
shot it names is removed. Text that is not in the block layout the demo uses (a flow-style ``scenes``
list, say) is written as clean YAML instead, without its comments, and the result says so.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from fractions import Fraction
from itertools import pairwise
from typing import Any

import yaml

from farm.shotlist.timecode import format_clock, format_smpte
from farm.shotlist.yaml_source import JsonPath, LocatedDocument

MICROSECONDS = 1_000_000


@dataclass(frozen=True)
class ShotListEdit:
    """What changes: the shots in their new order (a shot not listed is removed), new audio in/out
    (seconds) by shot, and the shots whose ``continues`` goes because its target was removed."""

    order: tuple[str, ...]
    timecodes: Mapping[str, Mapping[tuple[str, ...], Fraction]] = field(default_factory=dict)
    """shot id -> {field path within the shot: seconds}, only the ends that change: ``("audio", "in")``,
    ``("two_shot", "audio", "out")``."""
    drop_continues: frozenset[str] = frozenset()


@dataclass(frozen=True)
class RewrittenShotList:
    text: str
    layout_kept: bool
    """False when the text had to be written as clean YAML (its comments and layout lost)."""


class _LayoutUnknown(Exception):
    """The text is not laid out the way an in-place edit needs."""


def rewrite_shot_list(text: str, document: LocatedDocument, edit: ShotListEdit, fps: Fraction) -> RewrittenShotList:
    """``text`` (the file ``document`` was read from) with ``edit`` applied."""
    try:
        return RewrittenShotList(_TextEditor(text, document, fps).apply(edit), layout_kept=True)
    except _LayoutUnknown:
        return RewrittenShotList(_clean_yaml(document.data, edit, fps), layout_kept=False)


def timecode_token(seconds: Fraction, fps: Fraction, original: str) -> str:
    """``seconds`` written in the form of the YAML token ``original`` where it can be exactly."""
    quote = original[0] if original[:1] in ("'", '"') else ""
    raw = original[1:-1] if quote else original
    frames = seconds * fps
    if raw.count(":") == 3 and ";" not in raw and frames.denominator == 1:
        return f"{quote or chr(34)}{format_smpte(int(frames), fps)}{quote or chr(34)}"
    if raw.count(":") == 2 and (seconds * 1000).denominator == 1:
        return f"{quote or chr(34)}{format_clock(seconds)}{quote or chr(34)}"
    return decimal_seconds(seconds)


def decimal_seconds(seconds: Fraction) -> str:
    """Seconds as a decimal number to the microsecond (a 48 kHz sample is 20.8 us, so it is kept exactly)."""
    micro = round(seconds * MICROSECONDS)
    whole, part = divmod(micro, MICROSECONDS)
    return f"{whole}.{part:06d}".rstrip("0").rstrip(".")


class _TextEditor:
    def __init__(self, text: str, document: LocatedDocument, fps: Fraction) -> None:
        self.lines: list[str | None] = text.splitlines(keepends=True)
        self.document = document
        self.fps = fps
        self.places = _shot_places(document.data)

    def apply(self, edit: ShotListEdit) -> str:
        for shot_id, ends in edit.timecodes.items():
            for end, seconds in ends.items():
                self._replace_scalar((*self.places[shot_id], *end), seconds)
        for shot_id in edit.drop_continues:
            self._drop_line((*self.places[shot_id], "continues"))
        original = tuple(self.places)
        if tuple(edit.order) != original:
            self._reorder(edit.order)
        return "".join(line for line in self.lines if line is not None)

    def _replace_scalar(self, path: JsonPath, seconds: Fraction) -> None:
        start = self.document.value_positions.get(path)
        end = self.document.scalar_ends.get(path)
        if start is None or end is None or start.line != end.line:
            raise _LayoutUnknown
        line = self.lines[start.line - 1]
        assert line is not None
        token = timecode_token(seconds, self.fps, line[start.column - 1 : end.column - 1])
        self.lines[start.line - 1] = line[: start.column - 1] + token + line[end.column - 1 :]

    def _drop_line(self, path: JsonPath) -> None:
        key = self.document.key_positions.get(path)
        end = self.document.scalar_ends.get(path)
        if key is None or end is None or key.line != end.line:
            raise _LayoutUnknown
        line = self.lines[key.line - 1] or ""
        rest = line[end.column - 1 :].strip()
        if line[: key.column - 1].strip() or (rest and not rest.startswith("#")):
            raise _LayoutUnknown  # shares its line with another key (the shot's first, or flow style)
        self.lines[key.line - 1] = None

    def _reorder(self, order: Sequence[str]) -> None:
        scenes = self.document.data["scenes"]
        scene_blocks = [self._block(("scenes", index)) for index in range(len(scenes))]
        new_scenes: list[list[str | None]] = []
        scene_of = {shot_id: place[1] for shot_id, place in self.places.items()}
        scene_order = list(dict.fromkeys(scene_of[shot_id] for shot_id in order))
        for scene_index in scene_order:
            shot_ids = [shot_id for shot_id in order if scene_of[shot_id] == scene_index]
            new_scenes.append(self._scene_text(scene_index, scene_blocks[scene_index], shot_ids))
        first, last = scene_blocks[0][0], scene_blocks[-1][1]
        self.lines[first:last] = _joined(new_scenes, self._gaps(scene_blocks))

    def _scene_text(self, scene_index: int, block: tuple[int, int], shot_ids: Sequence[str]) -> list[str | None]:
        shots = self.document.data["scenes"][scene_index]["shots"]
        shot_blocks = [self._block(("scenes", scene_index, "shots", index)) for index in range(len(shots))]
        by_id = {shot["id"]: shot_blocks[index] for index, shot in enumerate(shots)}
        pieces = [self.lines[start:end] for start, end in (by_id[shot_id] for shot_id in shot_ids)]
        body = _joined(pieces, self._gaps(shot_blocks))
        return [*self.lines[block[0] : shot_blocks[0][0]], *body, *self.lines[shot_blocks[-1][1] : block[1]]]

    def _gaps(self, blocks: Sequence[tuple[int, int]]) -> list[list[str | None]]:
        return [self.lines[end:start] for (_, end), (start, _) in pairwise(blocks)]

    def _block(self, path: JsonPath) -> tuple[int, int]:
        """Lines ``[start, end)`` (0-based) of the sequence item at ``path``: its dash line, the comment
        lines just above it at its indentation, and every deeper-indented line after it."""
        position = self.document.value_positions.get(path)
        if position is None:
            raise _LayoutUnknown
        first = position.line - 1
        line = self.lines[first] or ""
        before = line[: position.column - 1].rstrip()
        if not before.endswith("-") or before[:-1].strip():
            raise _LayoutUnknown  # not "- key: ..." on one line
        dash = len(before) - 1
        start = first
        while start > 0 and _is_comment_at(self.lines[start - 1], dash):
            start -= 1
        end = first + 1
        while end < len(self.lines) and _belongs(self.lines[end], dash):
            end += 1
        while end > first + 1 and not (self.lines[end - 1] or "").strip():
            end -= 1  # trailing blank lines separate items; they stay where they are
        return start, end


def _joined(pieces: Sequence[list[str | None]], gaps: Sequence[list[str | None]]) -> list[str | None]:
    """The pieces in order with the original separators between slots (the k-th gap after the k-th piece)."""
    out: list[str | None] = []
    for index, piece in enumerate(pieces):
        if index:
            out.extend(gaps[index - 1] if index - 1 < len(gaps) else [])
        out.extend(piece)
    return out


def _indent(line: str) -> int:
    return len(line) - len(line.lstrip(" "))


def _is_comment_at(line: str | None, dash: int) -> bool:
    return line is not None and line.lstrip(" ").startswith("#") and _indent(line) == dash


def _belongs(line: str | None, dash: int) -> bool:
    if line is None:  # a dropped line inside the block
        return True
    return not line.strip() or _indent(line) > dash


def _shot_places(data: Any) -> dict[str, tuple[str, int, str, int]]:
    places: dict[str, tuple[str, int, str, int]] = {}
    for scene_index, scene in enumerate(data["scenes"]):
        for shot_index, shot in enumerate(scene["shots"]):
            places[shot["id"]] = ("scenes", scene_index, "shots", shot_index)
    return places


def _clean_yaml(data: Any, edit: ShotListEdit, fps: Fraction) -> str:
    """The edited document as plain block YAML (the fallback: comments are lost)."""
    shots = {shot["id"]: shot for scene in data["scenes"] for shot in scene["shots"]}
    scene_of = {shot["id"]: scene for scene in data["scenes"] for shot in scene["shots"]}
    scenes: list[dict[str, Any]] = []
    for shot_id in edit.order:
        scene = scene_of[shot_id]
        if not scenes or scenes[-1]["id"] != scene["id"]:
            scenes.append({**scene, "shots": []})
        shot = copy.deepcopy(shots[shot_id])
        for end, seconds in edit.timecodes.get(shot_id, {}).items():
            parent = shot
            for part in end[:-1]:
                parent = parent[part]
            original = parent[end[-1]]
            token = timecode_token(seconds, fps, f'"{original}"' if isinstance(original, str) else str(original))
            parent[end[-1]] = token.strip('"') if token.startswith('"') else float(token)
        if shot_id in edit.drop_continues:
            shot.pop("continues", None)
        scenes[-1]["shots"].append(shot)
    return yaml.safe_dump({**data, "scenes": scenes}, sort_keys=False, allow_unicode=True)
