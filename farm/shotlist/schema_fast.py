"""A quick, conservative answer to "does this shot list surely satisfy its schema?".

jsonschema spends about 10 microseconds per value it checks: a second on a 10,000-shot list, almost
always to find nothing. This walks the document with the schema's keywords (the subset the shot-list
schema uses) and answers True only when every keyword it meets surely holds; any keyword it does not
know, any doubt (a float ``multipleOf``, an ``enum`` of mixed types), and any violation answer False,
and the caller then runs jsonschema as before, which finds and words every error. So this can make a
valid list fast, never a broken one pass: a wrong True would be a bug, a needless False only costs time.

The schema is compiled once into one small check per schema node (its keywords' checks, each closed
over what it needs), so checking a value costs a call per keyword instead of a walk over the schema's
keys, their lookup and their annotations (issue 18, part 5c: a 10,000-shot list has 110,000 values).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

Check = Callable[[Any], bool]

_ANNOTATIONS = frozenset(
    {"description", "title", "$comment", "examples", "default", "x-hint", "$schema", "$id", "$defs"}
)
_DEFS_PREFIX = "#/$defs/"
_KEPT = 8
"""Compiled schemas kept (a process checks against one or two)."""
_compiled: dict[int, tuple[Any, Check]] = {}


def surely_valid(schema: Any, instance: Any) -> bool:
    """True only if ``instance`` satisfies ``schema`` (a draft 2020-12 schema whose references are local)."""
    return _compiled_check(schema)(instance)


def _compiled_check(schema: Any) -> Check:
    entry = _compiled.get(id(schema))
    if entry is None or entry[0] is not schema:
        defs = schema.get("$defs", {}) if isinstance(schema, dict) else {}
        entry = (schema, _Compiler(defs).compile(schema))
        _compiled[id(schema)] = entry
        while len(_compiled) > _KEPT:
            del _compiled[next(iter(_compiled))]
    return entry[1]


def _always(instance: Any) -> bool:
    return True


def _never(instance: Any) -> bool:
    return False


def _is_number(instance: Any) -> bool:
    return isinstance(instance, int | float) and not isinstance(instance, bool)


def _is_integer(instance: Any) -> bool:
    if isinstance(instance, bool):
        return False
    return isinstance(instance, int) or (isinstance(instance, float) and instance.is_integer())


_TYPES: dict[str, Check] = {
    "object": lambda instance: isinstance(instance, dict),
    "array": lambda instance: isinstance(instance, list),
    "string": lambda instance: isinstance(instance, str),
    "boolean": lambda instance: isinstance(instance, bool),
    "null": lambda instance: instance is None,
    "number": _is_number,
    "integer": _is_integer,
}


def _type_check(value: Any) -> Check:
    names = [value] if isinstance(value, str) else list(value)
    checks = [_TYPES.get(name, _never) for name in names]
    if len(checks) == 1:
        return checks[0]
    return lambda instance: any(check(instance) for check in checks)


def _same(a: Any, b: Any) -> bool:
    """Equal as JSON values, judged only between values of one Python type (else: not surely equal)."""
    return type(a) is type(b) and a == b


def _all(checks: list[Check]) -> Check:
    if not checks:
        return _always
    if len(checks) == 1:
        return checks[0]
    if len(checks) == 2:
        first, second = checks
        return lambda instance: first(instance) and second(instance)
    every = tuple(checks)

    def check(instance: Any) -> bool:
        for one in every:  # noqa: SIM110 - all() of a generator costs more per value
            if not one(instance):
                return False
        return True

    return check


class _Compiler:
    def __init__(self, defs: dict[str, Any]) -> None:
        self.defs = defs
        self.refs: dict[str, Check] = {}

    def compile(self, schema: Any) -> Check:
        if schema is True:
            return _always
        if not isinstance(schema, dict):
            return _never
        checks: list[Check] = []
        for keyword, value in schema.items():
            if keyword in _ANNOTATIONS:
                continue
            build = _BUILDERS.get(keyword)
            if build is None:
                return _never  # a keyword this does not know: leave the answer to jsonschema
            check = build(self, value, schema)
            if check is not None:
                checks.append(check)
        return _all(checks)

    def reference(self, value: Any) -> Check:
        name = value[len(_DEFS_PREFIX) :] if isinstance(value, str) and value.startswith(_DEFS_PREFIX) else None
        if name is None or name not in self.defs:
            return _never
        if name not in self.refs:
            target: list[Check] = []
            self.refs[name] = lambda instance: target[0](instance)  # compiled below; a definition may recurse
            target.append(self.compile(self.defs[name]))
        return self.refs[name]


Builder = Callable[[_Compiler, Any, dict[str, Any]], Check | None]


def _members(compiler: _Compiler, value: Any, schema: dict[str, Any]) -> Check | None:
    """``properties`` and ``additionalProperties`` in one pass over the mapping (built once, for the first)."""
    if "patternProperties" in schema:
        return _never
    properties = {key: compiler.compile(sub) for key, sub in schema.get("properties", {}).items()}
    additional = compiler.compile(schema["additionalProperties"]) if "additionalProperties" in schema else None

    def check(instance: Any) -> bool:
        if not isinstance(instance, dict):
            return True
        for key, item in instance.items():
            sub = properties.get(key, additional)
            if sub is not None and not sub(item):
                return False
        return True

    return check


def _additional(compiler: _Compiler, value: Any, schema: dict[str, Any]) -> Check | None:
    return None if "properties" in schema else _members(compiler, value, schema)


def _required(compiler: _Compiler, value: list[str], schema: dict[str, Any]) -> Check:
    keys = tuple(value)

    def check(instance: Any) -> bool:
        if not isinstance(instance, dict):
            return True
        for key in keys:  # noqa: SIM110 - all() of a generator costs more per value
            if key not in instance:
                return False
        return True

    return check


def _property_names(compiler: _Compiler, value: Any, schema: dict[str, Any]) -> Check:
    names = compiler.compile(value)
    return lambda instance: not isinstance(instance, dict) or all(names(key) for key in instance)


def _min_properties(compiler: _Compiler, value: int, schema: dict[str, Any]) -> Check:
    return lambda instance: not isinstance(instance, dict) or len(instance) >= value


def _items(compiler: _Compiler, value: Any, schema: dict[str, Any]) -> Check:
    if "prefixItems" in schema:
        return _never
    item_check = compiler.compile(value)

    def check(instance: Any) -> bool:
        if not isinstance(instance, list):
            return True
        for item in instance:  # noqa: SIM110 - all() of a generator costs more per value
            if not item_check(item):
                return False
        return True

    return check


def _min_items(compiler: _Compiler, value: int, schema: dict[str, Any]) -> Check:
    return lambda instance: not isinstance(instance, list) or len(instance) >= value


def _max_items(compiler: _Compiler, value: int, schema: dict[str, Any]) -> Check:
    return lambda instance: not isinstance(instance, list) or len(instance) <= value


def _min_length(compiler: _Compiler, value: int, schema: dict[str, Any]) -> Check:
    return lambda instance: not isinstance(instance, str) or len(instance) >= value


def _pattern(compiler: _Compiler, value: str, schema: dict[str, Any]) -> Check:
    search = re.compile(value).search
    return lambda instance: not isinstance(instance, str) or search(instance) is not None


def _minimum(compiler: _Compiler, value: float, schema: dict[str, Any]) -> Check:
    return lambda instance: not _is_number(instance) or instance >= value


def _maximum(compiler: _Compiler, value: float, schema: dict[str, Any]) -> Check:
    return lambda instance: not _is_number(instance) or instance <= value


def _exclusive_minimum(compiler: _Compiler, value: float, schema: dict[str, Any]) -> Check:
    return lambda instance: not _is_number(instance) or instance > value


def _multiple_of(compiler: _Compiler, value: Any, schema: dict[str, Any]) -> Check:
    if type(value) is not int:  # floats: leave to jsonschema
        return lambda instance: not _is_number(instance)
    return lambda instance: not _is_number(instance) or (type(instance) is int and instance % value == 0)


def _enum(compiler: _Compiler, value: list[Any], schema: dict[str, Any]) -> Check:
    choices = tuple(value)
    return lambda instance: any(_same(choice, instance) for choice in choices)


def _const(compiler: _Compiler, value: Any, schema: dict[str, Any]) -> Check:
    return lambda instance: _same(value, instance)


def _any_of(compiler: _Compiler, value: list[Any], schema: dict[str, Any]) -> Check:
    branches = tuple(compiler.compile(branch) for branch in value)
    return lambda instance: any(branch(instance) for branch in branches)


def _one_of(compiler: _Compiler, value: list[Any], schema: dict[str, Any]) -> Check:
    """One branch surely holds and every other surely fails (on its type or its constant)."""
    branches = tuple((compiler.compile(branch), _surely_fails(branch)) for branch in value)

    def check(instance: Any) -> bool:
        holding = [index for index, (holds, _) in enumerate(branches) if holds(instance)]
        if len(holding) != 1:
            return False
        return all(fails(instance) for index, (_, fails) in enumerate(branches) if index != holding[0])

    return check


def _surely_fails(branch: Any) -> Check:
    """Whether ``branch`` surely refuses a value: by its type, or its constant of the value's type."""
    if not isinstance(branch, dict):
        return lambda instance: branch is False
    typed = _type_check(branch["type"]) if "type" in branch else None
    has_const, const = "const" in branch, branch.get("const")

    def check(instance: Any) -> bool:
        if typed is not None and not typed(instance):
            return True
        return has_const and type(const) is type(instance) and const != instance

    return check


def _ref(compiler: _Compiler, value: str, schema: dict[str, Any]) -> Check:
    return compiler.reference(value)


_BUILDERS: dict[str, Builder] = {
    "type": lambda compiler, value, schema: _type_check(value),
    "properties": _members,
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
