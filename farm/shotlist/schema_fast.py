"""A quick, conservative answer to "does this shot list surely satisfy its schema?".

jsonschema spends about 10 microseconds per value it checks: a second on a 10,000-shot list, almost
always to find nothing. This walks the document with the schema's keywords (the subset the shot-list
schema uses) and answers True only when every keyword it meets surely holds; any keyword it does not
know, any doubt (a float ``multipleOf``, an ``enum`` of mixed types), and any violation answer False,
and the caller then runs jsonschema as before, which finds and words every error. So this can make a
valid list fast, never a broken one pass: a wrong True would be a bug, a needless False only costs time.
"""

from __future__ import annotations

import re
from functools import cache
from typing import Any

_ANNOTATIONS = frozenset(
    {"description", "title", "$comment", "examples", "default", "x-hint", "$schema", "$id", "$defs"}
)
_DEFS_PREFIX = "#/$defs/"


def surely_valid(schema: Any, instance: Any) -> bool:
    """True only if ``instance`` satisfies ``schema`` (a draft 2020-12 schema whose references are local)."""
    defs = schema.get("$defs", {}) if isinstance(schema, dict) else {}
    return _valid(schema, instance, defs)


def _valid(schema: Any, instance: Any, defs: dict[str, Any]) -> bool:
    if schema is True:
        return True
    if not isinstance(schema, dict):
        return False
    for keyword, value in schema.items():
        if keyword in _ANNOTATIONS:
            continue
        check = _KEYWORDS.get(keyword)
        if check is None or not check(value, instance, schema, defs):
            return False
    return True


def _is_type(instance: Any, name: str) -> bool:
    if name == "object":
        return isinstance(instance, dict)
    if name == "array":
        return isinstance(instance, list)
    if name == "string":
        return isinstance(instance, str)
    if name == "boolean":
        return isinstance(instance, bool)
    if name == "null":
        return instance is None
    if isinstance(instance, bool):
        return False
    if name == "number":
        return isinstance(instance, int | float)
    if name == "integer":
        return isinstance(instance, int) or (isinstance(instance, float) and instance.is_integer())
    return False


def _is_number(instance: Any) -> bool:
    return isinstance(instance, int | float) and not isinstance(instance, bool)


def _same(a: Any, b: Any) -> bool:
    """Equal as JSON values, judged only between values of one Python type (else: not surely equal)."""
    return type(a) is type(b) and a == b


def _type(value: Any, instance: Any, schema: dict[str, Any], defs: dict[str, Any]) -> bool:
    names = [value] if isinstance(value, str) else value
    return any(_is_type(instance, name) for name in names)


def _properties(value: dict[str, Any], instance: Any, schema: dict[str, Any], defs: dict[str, Any]) -> bool:
    if not isinstance(instance, dict):
        return True
    return all(_valid(value[key], item, defs) for key, item in instance.items() if key in value)


def _additional(value: Any, instance: Any, schema: dict[str, Any], defs: dict[str, Any]) -> bool:
    if not isinstance(instance, dict):
        return True
    if "patternProperties" in schema:
        return False
    known = schema.get("properties", {})
    return all(_valid(value, item, defs) for key, item in instance.items() if key not in known)


def _required(value: list[str], instance: Any, schema: dict[str, Any], defs: dict[str, Any]) -> bool:
    return not isinstance(instance, dict) or all(key in instance for key in value)


def _property_names(value: Any, instance: Any, schema: dict[str, Any], defs: dict[str, Any]) -> bool:
    return not isinstance(instance, dict) or all(_valid(value, key, defs) for key in instance)


def _min_properties(value: int, instance: Any, schema: dict[str, Any], defs: dict[str, Any]) -> bool:
    return not isinstance(instance, dict) or len(instance) >= value


def _items(value: Any, instance: Any, schema: dict[str, Any], defs: dict[str, Any]) -> bool:
    if not isinstance(instance, list):
        return True
    if "prefixItems" in schema:
        return False
    return all(_valid(value, item, defs) for item in instance)


def _min_items(value: int, instance: Any, schema: dict[str, Any], defs: dict[str, Any]) -> bool:
    return not isinstance(instance, list) or len(instance) >= value


def _max_items(value: int, instance: Any, schema: dict[str, Any], defs: dict[str, Any]) -> bool:
    return not isinstance(instance, list) or len(instance) <= value


def _min_length(value: int, instance: Any, schema: dict[str, Any], defs: dict[str, Any]) -> bool:
    return not isinstance(instance, str) or len(instance) >= value


def _pattern(value: str, instance: Any, schema: dict[str, Any], defs: dict[str, Any]) -> bool:
    return not isinstance(instance, str) or _compiled(value).search(instance) is not None


@cache
def _compiled(pattern: str) -> re.Pattern[str]:
    return re.compile(pattern)


def _minimum(value: float, instance: Any, schema: dict[str, Any], defs: dict[str, Any]) -> bool:
    return not _is_number(instance) or instance >= value


def _maximum(value: float, instance: Any, schema: dict[str, Any], defs: dict[str, Any]) -> bool:
    return not _is_number(instance) or instance <= value


def _exclusive_minimum(value: float, instance: Any, schema: dict[str, Any], defs: dict[str, Any]) -> bool:
    return not _is_number(instance) or instance > value


def _multiple_of(value: Any, instance: Any, schema: dict[str, Any], defs: dict[str, Any]) -> bool:
    if not _is_number(instance):
        return True
    return type(value) is int and type(instance) is int and instance % value == 0  # floats: leave to jsonschema


def _enum(value: list[Any], instance: Any, schema: dict[str, Any], defs: dict[str, Any]) -> bool:
    return any(_same(choice, instance) for choice in value)


def _const(value: Any, instance: Any, schema: dict[str, Any], defs: dict[str, Any]) -> bool:
    return _same(value, instance)


def _any_of(value: list[Any], instance: Any, schema: dict[str, Any], defs: dict[str, Any]) -> bool:
    return any(_valid(branch, instance, defs) for branch in value)


def _one_of(value: list[Any], instance: Any, schema: dict[str, Any], defs: dict[str, Any]) -> bool:
    """One branch surely holds and every other surely fails (on its type or its constant)."""
    holding = [branch for branch in value if _valid(branch, instance, defs)]
    return len(holding) == 1 and all(_surely_fails(branch, instance) for branch in value if branch is not holding[0])


def _surely_fails(branch: Any, instance: Any) -> bool:
    if not isinstance(branch, dict):
        return branch is False
    if "type" in branch and not _type(branch["type"], instance, branch, {}):
        return True
    return "const" in branch and type(branch["const"]) is type(instance) and branch["const"] != instance


def _ref(value: str, instance: Any, schema: dict[str, Any], defs: dict[str, Any]) -> bool:
    if not value.startswith(_DEFS_PREFIX) or value[len(_DEFS_PREFIX) :] not in defs:
        return False
    return _valid(defs[value[len(_DEFS_PREFIX) :]], instance, defs)


_KEYWORDS = {
    "type": _type,
    "properties": _properties,
    "additionalProperties": _additional,
    "required": _required,
    "propertyNames": _property_names,
    "minProperties": _min_properties,
    "items": _items,
    "minItems": _min_items,
    "maxItems": _max_items,
    "minLength": _min_length,
    "pattern": _pattern,
    "minimum": _minimum,
    "maximum": _maximum,
    "exclusiveMinimum": _exclusive_minimum,
    "multipleOf": _multiple_of,
    "enum": _enum,
    "const": _const,
    "anyOf": _any_of,
    "oneOf": _one_of,
    "$ref": _ref,
}
