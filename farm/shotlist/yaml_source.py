"""Safe YAML loading that remembers where every value came from.

Editors need errors that point at a line and column, so the document is built from PyYAML's event
stream rather than from its constructors: every value's and key's position is recorded under its path.
Building from events also lets us refuse what a shot list never needs and an attacker might send:
anchors and aliases (the "billion laughs" expansion), explicit tags (``!!python/object``), merge keys and
duplicate keys (which PyYAML would silently overwrite). Plain scalars follow the YAML 1.2 core schema,
so ``no`` stays a string and ``1:05`` is not read as the sexagesimal number 65.

The events come from libyaml's C parser when PyYAML has it (an episode of 10,000 shots parses in well
under a second instead of half a minute); its events carry the same line and column marks. A file it
refuses is parsed again by the pure-Python parser, whose messages name the offending character, so a
syntax error reads and points the same either way; a file with no error never pays for that.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

import yaml

from farm.collector import collector_paused
from farm.errors import Finding, ShotListError

JsonPath = tuple[str | int, ...]

MAX_FILE_BYTES = 5 * 1024 * 1024
MAX_DEPTH = 64
MAX_NODES = 1_000_000

_INT = re.compile(r"^[-+]?[0-9]+$")
_FLOAT = re.compile(r"^[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?$")

_FAST_LOADER: type = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
"""libyaml's parser when PyYAML was built with it, else the pure-Python one."""
_PLAIN_STYLES = (None, "")
_NO_TAGS = (None, "!")
"""Tags a value may carry: none, or the non-specific '!' (which only says 'a string')."""
_NULL_WORDS = frozenset({"~", "null", "Null", "NULL", ""})
_TRUE_WORDS = frozenset({"true", "True", "TRUE"})
_FALSE_WORDS = frozenset({"false", "False", "FALSE"})
_NUMBER_STARTS = frozenset("-+.0123456789")
"""A plain scalar's style: None from the Python parser, '' from libyaml's."""


class Position(NamedTuple):
    """1-based line and column (a tuple: a long shot list has hundreds of thousands of them)."""

    line: int
    column: int


_position = functools.partial(tuple.__new__, Position)
"""``Position`` from a (line, column) pair without NamedTuple's Python-level constructor (the hot loop)."""


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


def load_located_yaml(path: Path, display_name: str | None = None, *, scalar_ends: bool = True) -> LocatedDocument:
    """Read ``path`` as one YAML document; raise ShotListError with a located finding if it isn't one.

    ``scalar_ends=False`` leaves ``scalar_ends`` empty: only an edit of the text in place needs them, and
    a 10,000-shot list has 80,000 (a tenth of a second and megabytes that checking it never reads).
    """
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
    with collector_paused():  # parsing allocates an event and two marks per value, and keeps most of it
        return _build_document(path, name, text, scalar_ends)


def _build_document(path: Path, name: str, text: str, scalar_ends: bool) -> LocatedDocument:
    """The located document of ``text``, from libyaml's events; a file libyaml refuses is built again from
    the pure-Python parser's, whose messages name the offending character, so a syntax error reads and
    points the same either way (and a file with no error never pays for that)."""
    try:
        return _DocumentBuilder(path, name, scalar_ends).build(_FAST_LOADER, text)
    except yaml.YAMLError as exc:
        if _FAST_LOADER is yaml.SafeLoader:
            _syntax_error(name, exc)
    try:
        return _DocumentBuilder(path, name, scalar_ends).build(yaml.SafeLoader, text)
    except yaml.YAMLError as exc:
        _syntax_error(name, exc)
    raise AssertionError("unreachable: _syntax_error raises")


def _syntax_error(name: str, exc: yaml.YAMLError) -> None:
    if isinstance(exc, yaml.MarkedYAMLError):
        mark = exc.problem_mark or exc.context_mark
        line, column = (mark.line + 1, mark.column + 1) if mark else (1, 1)
        _fail(
            name,
            line,
            column,
            f"YAML syntax error: {exc.problem or exc.context}",
            "fix the indentation or quoting at this spot",
        )
    _fail(name, 1, 1, f"YAML error: {exc}", "fix the YAML syntax")


def _fail(name: str, line: int, column: int, message: str, hint: str) -> None:
    raise ShotListError([Finding(name, line, column, "", message, hint)])


class _DocumentBuilder:
    def __init__(self, path: Path, name: str, scalar_ends: bool) -> None:
        self.document = LocatedDocument(path=path, data=None)
        self.name = name
        self.node_count = 0
        self.scalar_ends = self.document.scalar_ends if scalar_ends else None

    def build(self, loader_class: type, text: str) -> LocatedDocument:
        """The document of ``text``, built while ``loader_class`` parses it: its events are never all held at
        once (on a 10,000-shot list they would be most of the memory). A YAMLError comes out as raised."""
        loader = loader_class(text)
        try:
            events = iter(loader.get_event, None)  # no Python generator between the parser and the builder
            try:
                return self._build(events)
            except ShotListError:
                for _ in events:  # a syntax error further on is reported first, as when all was parsed first
                    pass
                raise
        finally:
            loader.dispose()

    def _build(self, events: Iterator[yaml.Event]) -> LocatedDocument:
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
        # the hot loop of a long shot list (one call per value): exact-type tests, no helper calls
        self._check_event(event, depth)
        start = event.start_mark
        self.document.value_positions[path] = _position((start.line + 1, start.column + 1))
        kind = type(event)
        if kind is yaml.ScalarEvent:
            if self.scalar_ends is not None:
                end = event.end_mark
                self.scalar_ends[path] = _position((end.line + 1, end.column + 1))
            return _resolve_scalar(event)
        if kind is yaml.SequenceStartEvent:
            items: list[Any] = []
            for child in events:
                if type(child) is yaml.SequenceEndEvent:
                    return items
                items.append(self._value(events, child, (*path, len(items)), depth + 1))
        if kind is yaml.MappingStartEvent:
            return self._mapping(events, path, depth)
        raise AssertionError(f"unexpected YAML event {event!r}")

    def _mapping(self, events: Any, path: JsonPath, depth: int) -> dict[str, Any]:
        mapping: dict[str, Any] = {}
        for key_event in events:
            if type(key_event) is yaml.MappingEndEvent:
                return mapping
            self._check_event(key_event, depth + 1)
            mark = key_event.start_mark
            if type(key_event) is not yaml.ScalarEvent:
                _fail(
                    self.name,
                    mark.line + 1,
                    mark.column + 1,
                    "a mapping key must be a plain name",
                    "use a plain word as the key",
                )
            key = key_event.value
            if key == "<<" and key_event.style in _PLAIN_STYLES:
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
            self.document.key_positions[(*path, key)] = _position((mark.line + 1, mark.column + 1))
            mapping[key] = self._value(events, next(events), (*path, key), depth + 1)
        raise AssertionError("unterminated mapping")

    def _check_event(self, event: yaml.Event, depth: int) -> None:
        self.node_count += 1
        if (
            type(event) is yaml.AliasEvent
            or event.anchor is not None
            or event.tag not in _NO_TAGS
            or depth > MAX_DEPTH
            or self.node_count > MAX_NODES
        ):
            self._refuse_event(event, depth)

    def _refuse_event(self, event: yaml.Event, depth: int) -> None:
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
        _fail(
            self.name,
            line,
            column,
            f"more than {MAX_NODES} values in one shot list",
            "split the episode into several shot lists",
        )


def _resolve_scalar(event: yaml.ScalarEvent) -> Any:
    value = event.value
    if event.style not in _PLAIN_STYLES:  # quoted or block scalars are always strings
        return value
    if value in _NULL_WORDS:
        return None
    if value in _TRUE_WORDS:
        return True
    if value in _FALSE_WORDS:
        return False
    if value[0] not in _NUMBER_STARTS:  # most values: words, ids, prompts
        return value
    if _INT.match(value):
        return int(value)
    if _FLOAT.match(value):
        return float(value)
    return value
