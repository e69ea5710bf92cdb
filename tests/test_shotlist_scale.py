"""The fast front end reads a shot list exactly as the slow one did: libyaml's events build the same
located document as the pure-Python parser's, a syntax error reads and points the same, and the schema
copy with its references in place finds the same violations (issue 18, part 5c)."""

from __future__ import annotations

from pathlib import Path

import jsonschema
import pytest
import yaml

from farm.shotlist import schema_check, yaml_source
from farm.shotlist.load import validate_shot_list
from farm.shotlist.schema_fast import surely_valid
from tests.shotlists import REPO, TEMPLATE, make_project
from tests.test_shotlist_validation import INVALID_CASES

LISTS = sorted((REPO / "shots").rglob("*.yaml"))


def _documents(path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[object, object]:
    fast = yaml_source.load_located_yaml(path)
    with monkeypatch.context() as patched:
        patched.setattr(yaml_source, "_FAST_LOADER", yaml.SafeLoader)
        slow = yaml_source.load_located_yaml(path)
    return fast, slow


def test_libyaml_is_the_parser_here() -> None:
    assert yaml_source._FAST_LOADER is yaml.CSafeLoader  # PyYAML's wheels ship libyaml


@pytest.mark.parametrize("path", LISTS, ids=lambda p: p.name)
def test_both_parsers_build_the_same_located_document(path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    fast, slow = _documents(path, monkeypatch)
    assert fast.data == slow.data
    assert fast.value_positions == slow.value_positions
    assert fast.key_positions == slow.key_positions
    assert fast.scalar_ends == slow.scalar_ends


def test_a_document_without_scalar_ends_is_the_same_document_otherwise() -> None:
    """Validation asks for no scalar ends (only an edit in place uses them); all else is as recorded with them."""
    path = REPO / "shots" / "demo" / "episode.yaml"
    full, lean = yaml_source.load_located_yaml(path), yaml_source.load_located_yaml(path, scalar_ends=False)
    assert full.scalar_ends and not lean.scalar_ends
    assert (lean.data, lean.value_positions, lean.key_positions) == (
        full.data,
        full.value_positions,
        full.key_positions,
    )


def test_plain_quoted_and_block_scalars_resolve_alike(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "values.yaml"
    path.write_text(
        "a: no\nb: 'yes'\nc: 1:05\nd: 0x1F\ne: -2.5e3\nf: ~\ng: TRUE\nh: |\n  text\ni: ! 12\nj: \"\"\nk: .5\n"
        "l: [+7, null, 'null', 1_000]\n"
    )
    fast, slow = _documents(path, monkeypatch)
    assert fast.data == slow.data
    assert fast.data == {
        "a": "no",
        "b": "yes",
        "c": "1:05",
        "d": "0x1F",
        "e": -2500.0,
        "f": None,
        "g": True,
        "h": "text\n",
        "i": 12,
        "j": "",
        "k": 0.5,
        "l": [7, None, "null", "1_000"],
    }


def test_a_syntax_error_libyaml_words_otherwise_reads_and_points_as_before(tmp_path: Path) -> None:
    # libyaml says "found a tab character that violates indentation" on the next line; the Python parser names
    # the character where it stands, which is what editors have always been shown
    path = make_project(tmp_path, TEMPLATE.replace("  quality: preview", "  quality: \tpreview\n\tx: 1"))
    (finding,) = validate_shot_list(path).findings
    assert (finding.line, finding.column) == (9, 12)
    assert finding.message == "YAML syntax error: found character '\\t' that cannot start any token"
    assert finding.hint == "fix the indentation or quoting at this spot"


def test_the_inlined_schema_has_no_references_left() -> None:
    assert "$ref" not in repr({k: v for k, v in schema_check._validator().schema.items() if k != "$defs"})


@pytest.mark.parametrize("case_id", sorted(INVALID_CASES))
def test_the_inlined_schema_finds_what_the_schema_finds(tmp_path: Path, case_id: str) -> None:
    path = make_project(tmp_path, INVALID_CASES[case_id].edit(TEMPLATE))
    try:
        document = yaml_source.load_located_yaml(path)
    except Exception:  # a YAML-level case never reaches the schema
        return

    def violations(validator: jsonschema.Draft202012Validator) -> list[tuple[object, ...]]:
        return sorted(
            (tuple(map(str, e.absolute_path)), e.validator, e.message, e.schema.get("x-hint", ""))
            for e in validator.iter_errors(document.data)
        )

    original = jsonschema.Draft202012Validator(schema_check.shotlist_schema())
    assert violations(schema_check._validator()) == violations(original)


def test_the_quick_check_passes_the_shipped_lists(monkeypatch: pytest.MonkeyPatch) -> None:
    for path in LISTS:
        assert surely_valid(schema_check.shotlist_schema(), yaml_source.load_located_yaml(path).data), path.name


@pytest.mark.parametrize("case_id", sorted(INVALID_CASES))
def test_the_quick_check_never_passes_what_jsonschema_refuses(tmp_path: Path, case_id: str) -> None:
    path = make_project(tmp_path, INVALID_CASES[case_id].edit(TEMPLATE))
    try:
        data = yaml_source.load_located_yaml(path).data
    except Exception:  # a YAML-level case never reaches the schema
        return
    if list(schema_check._validator().iter_errors(data)):
        assert not surely_valid(schema_check.shotlist_schema(), data)
        assert not surely_valid(schema_check._validator().schema, data)


ODD_VALUES = (
    None,
    True,
    False,
    0,
    1,
    -1,
    1.0,
    1.5,
    2,
    63,
    64,
    4096,
    4097,
    "",
    "x",
    "none",
    "1:05",
    "00:00:01.5",
    "00:00:01:12",
    "30%",
    "static",
    "preview",
    [],
    [0, 0, 1, 1],
    {},
    {"x": 0.5, "y": 2},
)


def _leaf_paths(data: object, path: tuple = ()) -> list[tuple]:
    if isinstance(data, dict):
        return [path] + [p for key, value in data.items() for p in _leaf_paths(value, (*path, key))]
    if isinstance(data, list):
        return [path] + [p for index, value in enumerate(data) for p in _leaf_paths(value, (*path, index))]
    return [path]


def _replaced(data: object, path: tuple, value: object) -> object:
    if not path:
        return value
    copy = dict(data) if isinstance(data, dict) else list(data)  # type: ignore[call-overload]
    copy[path[0]] = _replaced(copy[path[0]], path[1:], value)
    return copy


@pytest.mark.parametrize("base", ["template", "episode"])
def test_whatever_a_value_is_changed_to_the_quick_check_agrees_with_jsonschema(tmp_path: Path, base: str) -> None:
    path = make_project(tmp_path, TEMPLATE) if base == "template" else REPO / "shots" / "demo" / "episode.yaml"
    data = yaml_source.load_located_yaml(path).data
    validator, schema = schema_check._validator(), schema_check.shotlist_schema()
    passed = refused = 0
    for leaf in _leaf_paths(data):
        for value in ODD_VALUES:
            mutated = _replaced(data, leaf, value)
            if surely_valid(schema, mutated):
                assert not list(validator.iter_errors(mutated)), (leaf, value)
                passed += 1
            else:
                refused += 1
    assert passed > 50 and refused > 500  # both answers were exercised
