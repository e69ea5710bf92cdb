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
