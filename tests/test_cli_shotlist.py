"""``farm validate`` and ``farm plan`` as a person runs them: exit codes, one-line errors, no tracebacks."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

from farm.settings import REPO_ROOT
from tests.shotlists import TEMPLATE, make_project, replace_once


def farm(*args: str, cwd: Path, data_dir: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "FARM_DATA_DIR": str(data_dir), "PYTHONPATH": str(REPO_ROOT)}
    return subprocess.run(
        [sys.executable, "-m", "farm", *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=120
    )


def test_validate_demo_exits_zero(tmp_path: Path) -> None:
    result = farm("validate", "shots/demo/episode.yaml", cwd=REPO_ROOT, data_dir=tmp_path)

    assert result.returncode == 0, result.stderr
    assert "valid (3 scenes, 7 shots" in result.stdout


def test_broken_shot_list_exits_two_with_located_lines_and_no_traceback(tmp_path: Path) -> None:
    text = replace_once(TEMPLATE, "character: walter", "character: nobody")
    text = replace_once(text, "out: 7.68", "out: 99")
    make_project(tmp_path, text)
    result = farm("validate", "ep.yaml", cwd=tmp_path, data_dir=tmp_path / "data")

    assert result.returncode == 2
    assert "Traceback" not in result.stderr + result.stdout
    error_lines = [line for line in result.stderr.splitlines() if re.match(r"ep\.yaml:\d+:\d+: ", line)]
    assert error_lines == [
        "ep.yaml:28:20: shot b: character: unknown character 'nobody'; "
        "define it under 'characters' or use one of marcus, walter",
        "ep.yaml:33:45: shot c: audio.out: out 99 is past the end of track 'sc01' (7.684 s); "
        "set out within the track's length",
    ]


def test_validate_json_reports_each_file(tmp_path: Path) -> None:
    make_project(tmp_path / "good")
    make_project(tmp_path / "bad", replace_once(TEMPLATE, "fps: 25", "fps: 0"))
    result = farm("validate", "good/ep.yaml", "bad/ep.yaml", "--json", cwd=tmp_path, data_dir=tmp_path / "data")

    assert result.returncode == 2
    report = json.loads(result.stdout)
    assert report["valid"] is False
    assert [(f["file"], f["valid"]) for f in report["files"]] == [("good/ep.yaml", True), ("bad/ep.yaml", False)]
    finding = report["files"][1]["findings"][0]
    assert (finding["line"], finding["column"], finding["field"]) == (5, 8, "output.fps")


def test_missing_file_is_bad_input_not_a_crash(tmp_path: Path) -> None:
    result = farm("validate", "nowhere.yaml", cwd=tmp_path, data_dir=tmp_path)

    assert result.returncode == 2
    assert "nowhere.yaml:1:1: file not found" in result.stderr
    assert "Traceback" not in result.stderr


def test_plan_json_lists_frames_audio_slice_and_cache_key(tmp_path: Path) -> None:
    result = farm("plan", "shots/demo/episode.yaml", "--json", cwd=REPO_ROOT, data_dir=tmp_path)

    assert result.returncode == 0, result.stderr
    plan = json.loads(result.stdout)
    assert len(plan["shots"]) == 7
    for shot in plan["shots"]:
        assert shot["frames"] > 0 and len(shot["cache_key"]) == 64
        assert shot["audio"]["samples"] == shot["frames"] * 16_000 // 25


def test_plan_of_invalid_list_exits_two(tmp_path: Path) -> None:
    make_project(tmp_path, replace_once(TEMPLATE, "continues: a", "continues: zz"))
    result = farm("plan", "ep.yaml", cwd=tmp_path, data_dir=tmp_path / "data")

    assert result.returncode == 2
    assert result.stderr.strip() == "ep.yaml:35:20: shot c: continues: unknown shot 'zz'; name an earlier shot's id"
