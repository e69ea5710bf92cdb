"""JSON Schema validation of a shot list, with jsonschema's errors rewritten for editors.

The schema, shotlist.schema.json beside this module, is the single statement of the format (editors get
completion from it too, through the checkout's schemas/shotlist.schema.json, a link to it). It ships in
the package and is read as package data, so an installed farm finds it wherever it is installed.
jsonschema finds the violations; this module only words them: each becomes a located Finding with a plain
message and, where the schema carries an ``x-hint``, how to fix it.

The validator runs on a copy of the schema with its ``$defs`` references written in place: jsonschema
resolves a ``$ref`` anew at every value it checks (an episode of 10,000 shots has 70,000 of them), and a
reference whose only sibling is a description means exactly its target, so the copy validates the
same and words the same errors in half the time. Before either, farm.shotlist.schema_fast answers
whether the list surely holds (it almost always does); only when it cannot say so does jsonschema run.
"""

from __future__ import annotations

import difflib
import json
from collections.abc import Iterator
from functools import cache
from importlib import resources
from typing import TYPE_CHECKING, Any

from farm.errors import Finding
from farm.shotlist.locations import finding_at
from farm.shotlist.schema_fast import surely_valid
from farm.shotlist.yaml_source import JsonPath, LocatedDocument

if TYPE_CHECKING:
    import jsonschema
    from jsonschema.exceptions import ValidationError

SCHEMA_FILE = "shotlist.schema.json"
"""The schema's name in this package (``farm.shotlist``)."""

_JSON_TYPES = {
    "string": "a string",
    "integer": "a whole number",
    "number": "a number",
    "object": "a mapping",
    "array": "a list",
    "boolean": "true or false",
    "null": "nothing",
}


_ANNOTATIONS = frozenset({"description", "title", "$comment", "examples"})
"""Keywords that never make a value invalid: a ``$ref`` beside only these means just its target."""
_DEFS_PREFIX = "#/$defs/"


@cache
def shotlist_schema() -> dict[str, Any]:
    return json.loads(resources.files(__package__).joinpath(SCHEMA_FILE).read_text(encoding="utf-8"))


@cache
def inlined_schema() -> dict[str, Any]:
    """The schema with its ``$defs`` references written in place (what both validators check against)."""
    schema = shotlist_schema()
    return _inline_refs(schema, schema.get("$defs", {}), ())


@cache
def _validator() -> jsonschema.Draft202012Validator:
    import jsonschema  # only for a list schema_fast cannot vouch for: a valid list never loads it

    return jsonschema.Draft202012Validator(inlined_schema())


def _inline_refs(node: Any, defs: dict[str, Any], expanding: tuple[str, ...]) -> Any:
    """``node`` with each ``{"$ref": "#/$defs/NAME", <annotations>}`` replaced by NAME's schema (itself
    inlined); a reference with other siblings, or one that would recurse, stays a reference."""
    if isinstance(node, list):
        return [_inline_refs(item, defs, expanding) for item in node]
    if not isinstance(node, dict):
        return node
    ref = node.get("$ref")
    if isinstance(ref, str) and ref.startswith(_DEFS_PREFIX):
        name = ref[len(_DEFS_PREFIX) :]
        if name in defs and name not in expanding and set(node) - {"$ref"} <= _ANNOTATIONS:
            return _inline_refs(defs[name], defs, (*expanding, name))
    return {key: _inline_refs(value, defs, expanding) for key, value in node.items()}


def schema_findings(document: LocatedDocument, display_name: str) -> tuple[list[Finding], set[JsonPath]]:
    """The findings, and the paths they concern (so later checks don't report the same value twice)."""
    if surely_valid(inlined_schema(), document.data):  # the usual case, in a tenth of jsonschema's time
        return [], set()
    validator = _validator()
    findings: list[Finding] = []
    paths: set[JsonPath] = set()
    seen: set[tuple[int, int, str]] = set()
    for error in sorted(validator.iter_errors(document.data), key=lambda e: list(map(str, e.absolute_path))):
        if error.validator not in {"required", "additionalProperties"}:
            paths.add(tuple(error.absolute_path))
        for finding in _word_error(document, display_name, error):
            identity = (finding.line, finding.column, finding.message)
            if identity not in seen:
                seen.add(identity)
                findings.append(finding)
    return findings, paths


def _word_error(document: LocatedDocument, name: str, error: ValidationError) -> Iterator[Finding]:
    path: JsonPath = tuple(error.absolute_path)
    keyword = error.validator
    instance = error.instance
    hint = error.schema.get("x-hint", "") if isinstance(error.schema, dict) else ""

    if keyword == "required":
        for missing in error.validator_value:
            if isinstance(instance, dict) and missing not in instance:
                yield finding_at(
                    document,
                    name,
                    (*path, missing),
                    f"missing required field '{missing}'",
                    hint or f"add '{missing}: ...'",
                )
    elif keyword == "additionalProperties" and isinstance(instance, dict):
        allowed = sorted(error.schema.get("properties", {}))
        for extra in instance:
            if extra not in allowed:
                yield finding_at(
                    document, name, (*path, extra), f"unknown field '{extra}'", _suggestion(extra, allowed), key=True
                )
    elif error.relative_schema_path and "propertyNames" in error.relative_schema_path:
        yield finding_at(
            document, name, (*path, instance), f"'{instance}' is not a valid name here", hint or "rename it", key=True
        )
    elif keyword == "type":
        expected = error.validator_value
        wanted = " or ".join(_JSON_TYPES.get(t, t) for t in ([expected] if isinstance(expected, str) else expected))
        yield finding_at(document, name, path, f"expected {wanted}, got {_describe(instance)}", hint)
    elif keyword == "enum":
        choices = [str(choice) for choice in error.validator_value]
        yield finding_at(
            document,
            name,
            path,
            f"{_describe(instance)} is not allowed here",
            _suggestion(str(instance), choices, verb="use"),
        )
    elif keyword == "const":
        yield finding_at(
            document, name, path, f"{_describe(instance)} is not supported", hint or f"use {error.validator_value!r}"
        )
    elif keyword in {"minimum", "exclusiveMinimum"}:
        relation = "below" if keyword == "minimum" else "not above"
        yield finding_at(document, name, path, f"{instance} is {relation} the minimum {error.validator_value}", hint)
    elif keyword in {"maximum", "exclusiveMaximum"}:
        relation = "above" if keyword == "maximum" else "not below"
        yield finding_at(document, name, path, f"{instance} is {relation} the maximum {error.validator_value}", hint)
    elif keyword == "multipleOf":
        yield finding_at(document, name, path, f"{instance} is not a multiple of {error.validator_value}", hint)
    elif keyword in {"minLength", "minItems", "minProperties"}:
        yield finding_at(document, name, path, "must not be empty", hint or "add at least one entry")
    else:  # pattern, anyOf, oneOf and anything the schema grows later
        yield finding_at(document, name, path, f"{_describe(instance)} is not valid here", hint or error.message)


def _describe(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "nothing"
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, str):
        return f"'{value}'"
    return f"{type(value).__name__ if not isinstance(value, int | float) else 'number'} {value}"


def _suggestion(value: str, choices: list[str], verb: str = "allowed are") -> str:
    close = difflib.get_close_matches(value, choices, n=1, cutoff=0.6)
    listing = ", ".join(choices)
    if close:
        return (
            f"did you mean '{close[0]}'? ({verb} {listing})"
            if verb != "use"
            else f"did you mean '{close[0]}'? use one of {listing}"
        )
    return f"use one of {listing}" if verb == "use" else f"remove it ({verb} {listing})"
