"""Safe YAML loading that remembers where every value came from.

Editors need errors that point at a line and column, so the document is built from PyYAML's event
stream rather than from its constructors: every value's and key's position is recorded under its path.
Building from events also lets us refuse what a shot list never needs and an attacker might send:
anchors and aliases (the "billion laughs" expansion), explicit tags (``!!python/object``), merge keys and
duplicate keys (which PyYAML would silently overwrite). Plain scalars follow the YAML 1.2 core schema,
so ``no`` stays a string and ``1:05`` is not read as the sexagesimal number 65.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from farm.errors import Finding, ShotListError

JsonPath = tuple[str | int, ...]

MAX_FILE_BYTES = 5 * 1024 * 1024
MAX_DEPTH = 64
MAX_NODES = 1_000_000

_NULL = re.compile(r"^(~|null|Null|NULL|)$")
_BOOL_TRUE = re.compile(r"^(true|True|TRUE)$")
_BOOL_FALSE = re.compile(r"^(false|False|FALSE)$")
_INT = re.compile(r"^[-+]?[0-9]+$")
_FLOAT = re.compile(r"^[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?$")


@dataclass(frozen=True)
class Position:
    line: int
    column: int


@dataclass
class LocatedDocument:
    """A parsed YAML document plus the 1-based position of every value and mapping key in it."""

    path: Path
    data: Any
    value_positions: dict[JsonPath, Position] = field(default_factory=dict)
    key_positions: dict[JsonPath, Position] = field(default_factory=dict)
    scalar_ends: dict[JsonPath, Position] = field(default_factory=dict)
    """Where each scalar value's text ends (exclusive), so a value can be replaced in place in the text."""

    def locate(self, path: JsonPath, *, key: bool = False) -> Position:
        """Position of ``path``; of its key when ``key``; else of the nearest ancestor that exists."""
        probe = tuple(path)
        if key and probe in self.key_positions:
            return self.key_positions[probe]
        while probe:
            if probe in self.value_positions:
                return self.value_positions[probe]
            probe = probe[:-1]
        return self.value_positions.get((), Position(1, 1))


def load_located_yaml(path: Path, display_name: str | None = None) -> LocatedDocument:
    """Read ``path`` as one YAML document; raise ShotListError with a located finding if it isn't one."""
    name = display_name or str(path)
    try:
        size = path.stat().st_size
        if size > MAX_FILE_BYTES:
            _fail(
                name,
                1,
                1,
                f"file is {size} bytes, more than the {MAX_FILE_BYTES} a shot list may have",
                "split the episode into several shot lists",
            )
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        _fail(name, 1, 1, "file not found", "check the path")
    except IsADirectoryError:
        _fail(name, 1, 1, "is a directory, not a shot list", "pass the .yaml file inside it")
    except PermissionError:
        _fail(name, 1, 1, "permission denied", "make the file readable")
    except UnicodeDecodeError as exc:
        _fail(name, 1, 1, f"is not UTF-8 text ({exc.reason} at byte {exc.start})", "save the file as UTF-8")
    return _DocumentBuilder(path, name).build(text)


def _fail(name: str, line: int, column: int, message: str, hint: str) -> None:
    raise ShotListError([Finding(name, line, column, "", message, hint)])


class _DocumentBuilder:
    def __init__(self, path: Path, name: str) -> None:
        self.document = LocatedDocument(path=path, data=None)
        self.name = name
        self.node_count = 0

    def build(self, text: str) -> LocatedDocument:
        try:
            events = iter(list(yaml.parse(text, Loader=yaml.SafeLoader)))
        except yaml.MarkedYAMLError as exc:
            mark = exc.problem_mark or exc.context_mark
            line, column = (mark.line + 1, mark.column + 1) if mark else (1, 1)
            _fail(
                self.name,
                line,
                column,
                f"YAML syntax error: {exc.problem or exc.context}",
                "fix the indentation or quoting at this spot",
            )
        except yaml.YAMLError as exc:
            _fail(self.name, 1, 1, f"YAML error: {exc}", "fix the YAML syntax")

        next(events)  # StreamStart
        event = next(events)
        if isinstance(event, yaml.StreamEndEvent):
            _fail(self.name, 1, 1, "the file is empty", "start from shots/demo/episode.yaml")
        self.document.data = self._value(events, next(events), (), 0)
        next(events)  # DocumentEnd
        event = next(events)
        if not isinstance(event, yaml.StreamEndEvent):
            mark = event.start_mark
            _fail(
                self.name,
                mark.line + 1,
                mark.column + 1,
                "a second YAML document follows the first",
                "keep one shot list per file (remove the extra '---')",
            )
        return self.document

    def _value(self, events: Any, event: yaml.Event, path: JsonPath, depth: int) -> Any:
        self._check_event(event, depth)
        position = Position(event.start_mark.line + 1, event.start_mark.column + 1)
        self.document.value_positions[path] = position
        if isinstance(event, yaml.ScalarEvent):
            self.document.scalar_ends[path] = Position(event.end_mark.line + 1, event.end_mark.column + 1)
            return _resolve_scalar(event)
        if isinstance(event, yaml.SequenceStartEvent):
            items: list[Any] = []
            for child in events:
                if isinstance(child, yaml.SequenceEndEvent):
                    return items
                items.append(self._value(events, child, (*path, len(items)), depth + 1))
        if isinstance(event, yaml.MappingStartEvent):
            return self._mapping(events, path, depth)
        raise AssertionError(f"unexpected YAML event {event!r}")

    def _mapping(self, events: Any, path: JsonPath, depth: int) -> dict[str, Any]:
        mapping: dict[str, Any] = {}
        for key_event in events:
            if isinstance(key_event, yaml.MappingEndEvent):
                return mapping
            self._check_event(key_event, depth + 1)
            mark = key_event.start_mark
            if not isinstance(key_event, yaml.ScalarEvent):
                _fail(
                    self.name,
                    mark.line + 1,
                    mark.column + 1,
                    "a mapping key must be a plain name",
                    "use a plain word as the key",
                )
            key = key_event.value
            if key == "<<" and key_event.style is None:
                _fail(
                    self.name,
                    mark.line + 1,
                    mark.column + 1,
                    "YAML merge keys ('<<') are not supported",
                    "write the fields out in full",
                )
            if key in mapping:
                first = self.document.key_positions[(*path, key)]
                _fail(
                    self.name,
                    mark.line + 1,
                    mark.column + 1,
                    f"duplicate key '{key}' (first defined on line {first.line})",
                    "remove one of them or give it another name",
                )
            self.document.key_positions[(*path, key)] = Position(mark.line + 1, mark.column + 1)
            mapping[key] = self._value(events, next(events), (*path, key), depth + 1)
        raise AssertionError("unterminated mapping")

    def _check_event(self, event: yaml.Event, depth: int) -> None:
        mark = event.start_mark
        line, column = mark.line + 1, mark.column + 1
        if isinstance(event, yaml.AliasEvent):
            _fail(
                self.name,
                line,
                column,
                f"YAML aliases (*{event.anchor}) are not allowed in a shot list",
                "write the value out instead of referring to an anchor",
            )
        if getattr(event, "anchor", None) is not None:
            _fail(
                self.name,
                line,
                column,
                f"YAML anchors (&{event.anchor}) are not allowed in a shot list",
                "remove the anchor and write values out in full",
            )
        tag = getattr(event, "tag", None)
        if tag is not None and tag != "!":
            _fail(
                self.name,
                line,
                column,
                f"YAML tag '{tag}' is not allowed in a shot list",
                "remove the tag; values are plain strings, numbers, lists and mappings",
            )
        if depth > MAX_DEPTH:
            _fail(self.name, line, column, f"nesting is deeper than {MAX_DEPTH} levels", "flatten the document")
        self.node_count += 1
        if self.node_count > MAX_NODES:
            _fail(
                self.name,
                line,
                column,
                f"more than {MAX_NODES} values in one shot list",
                "split the episode into several shot lists",
            )


def _resolve_scalar(event: yaml.ScalarEvent) -> Any:
    value = event.value
    if event.style is not None:  # quoted or block scalars are always strings
        return value
    if _NULL.match(value):
        return None
    if _BOOL_TRUE.match(value):
        return True
    if _BOOL_FALSE.match(value):
        return False
    if _INT.match(value):
        return int(value)
    if _FLOAT.match(value):
        return float(value)
    return value
