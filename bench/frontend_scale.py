"""How fast are ``farm validate`` and ``farm plan`` on a 10,000-shot list? (issue 18, part 5c)

The episode this builds is the one the issue measured: 10,000 one-second shots over two characters
(the demo's portraits), all cut from one 10,000 s dialogue track (16 kHz mono 16-bit WAV, ~320 MB,
written in chunks so generating it costs ~1 s and little memory; speech-like bursts with pauses, so
slices differ and their digests are real). In one run, for each checkout given (``--before``, default
/work/main, and this one), this script times as subprocesses, end to end:

- ``python -m farm validate LIST`` and ``python -m farm plan LIST --json``, the plan again once the data
  dir has a database: wall time, CPU time and peak RSS (``resource.getrusage(RUSAGE_CHILDREN)`` of a
  fresh child per measurement; the fastest of ``--repeats`` runs, the checkouts taking turns), and
  whether every checkout's plans have byte-identical cache keys;

and, in process for this checkout only, the stages behind them (YAML load, schema, semantic checks,
building the ShotList, planning) with tracemalloc's peak, so a regression shows where it is.

Target: validate and plan each under 3 s and 300 MB.

    python bench/frontend_scale.py [--shots 10000] [--before /work/main | none] [--keep DIR] [--repeats 3]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import tracemalloc
import wave
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parents[1]
RATE = 16_000
SHOT_SECONDS = 1


def write_track(path: Path, seconds: int) -> None:
    """``seconds`` of speech-like mono int16 at 16 kHz: tone bursts whose pitch and loudness drift, with
    pauses between them, written one minute at a time."""
    rng = np.random.default_rng(18)
    minute = 60 * RATE
    t = np.arange(minute) / RATE
    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(RATE)
        for start in range(0, seconds, 60):
            pitch = 110 + 90 * rng.random()
            envelope = (np.sin(2 * np.pi * 0.7 * t + rng.random() * 6) > -0.2).astype(np.float64)
            signal = np.sin(2 * np.pi * pitch * t) * envelope * (0.2 + 0.3 * rng.random())
            signal += rng.normal(0, 0.01, minute)
            samples = np.clip(signal * 32767, -32768, 32767).astype("<i2")
            out.writeframes(samples[: min(minute, (seconds - start) * RATE)].tobytes())


def write_shot_list(folder: Path, shots: int) -> Path:
    media = folder / "media"
    media.mkdir(parents=True)
    for name in ("marcus.jpg", "walter.jpg"):
        shutil.copy(REPO / "shots" / "demo" / "media" / name, media / name)
    write_track(media / "dialogue.wav", shots * SHOT_SECONDS)
    lines = [
        "version: 1",
        "project: Scale",
        'episode: "18"',
        "output: {fps: 25, width: 480, height: 832}",
        "defaults: {quality: preview, seed: 42}",
        "characters:",
        "  marcus: {image: media/marcus.jpg}",
        "  walter: {image: media/walter.jpg}",
        "audio_tracks:",
        "  dialogue: {file: media/dialogue.wav}",
        "scenes:",
    ]
    per_scene = 100
    for scene in range(0, shots, per_scene):
        lines += [f"  - id: sc{scene // per_scene:03d}", "    shots:"]
        for index in range(scene, min(shots, scene + per_scene)):
            start = index * SHOT_SECONDS
            lines += [
                f"      - id: sh{index:05d}",
                f"        character: {'marcus' if index % 2 == 0 else 'walter'}",
                f"        audio: {{track: dialogue, in: {start}, out: {start + SHOT_SECONDS}}}",
                f"        prompt: Shot {index} of the long night, the speaker talks in warm light",
                "        camera: {move: push_in, intensity: 20%}",
            ]
    path = folder / "episode.yaml"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


Figures = tuple[float, float, float, int, str, str]
"""Wall s, CPU s, peak RSS MB, exit status, stderr's tail, and the sha256 of the plan's cache keys (one a line)."""
COMMANDS = ("validate", "plan --json", "plan, db")
"""``plan, db`` is ``plan --json`` once the data dir has a (migrated, empty) database: the studio's case,
where the plan also asks the database which shots are already rendered."""


def run_farm(repo: Path, python: Path, args: list[str], data_dir: Path) -> Figures:
    """The Figures of ``python -m farm ARGS`` run from ``repo``."""
    script = (
        "import hashlib, resource, subprocess, sys, time, json\n"
        "start = time.perf_counter()\n"
        "done = subprocess.run(sys.argv[1:], capture_output=True, text=True)\n"
        "wall = time.perf_counter() - start\n"
        "usage = resource.getrusage(resource.RUSAGE_CHILDREN)\n"
        "cpu = usage.ru_utime + usage.ru_stime\n"
        "keys = ''\n"
        "if done.returncode == 0 and done.stdout.startswith('{'):\n"
        "    shots = json.loads(done.stdout).get('shots', [])\n"
        "    keys = hashlib.sha256('\\n'.join(shot['cache_key'] for shot in shots).encode()).hexdigest()\n"
        "print(json.dumps([wall, cpu, usage.ru_maxrss / 1024, done.returncode, done.stderr[-400:], keys]))\n"
    )
    env = {**os.environ, "PYTHONPATH": str(repo), "RAY_AUTH_MODE": "disabled"}
    command = [str(python), "-m", "farm", *args, "--data-dir", str(data_dir)]
    out = subprocess.run(
        [sys.executable, "-c", script, *command], cwd=repo, env=env, capture_output=True, text=True, check=True
    )
    wall, cpu, peak, code, tail, keys = json.loads(out.stdout)
    return wall, cpu, peak, code, tail, keys


def which_python(repo: Path) -> Path:
    venv = repo / ".venv" / "bin" / "python"
    return venv if venv.exists() else Path(sys.executable)


def end_to_end(repos: list[Path], shot_list: Path, scratch: Path, repeats: int) -> dict[Path, dict[str, Figures]]:
    """Each command of each checkout: once to warm up, then ``repeats`` times, the checkouts taking turns
    (so a burst of load elsewhere on the machine falls on both), each keeping its fastest run.

    The warm-up fills the data dir's face and digest memos (what any later run of farm on these portraits
    and models finds). The data dir is made first, as farm's first write would make it: a read never
    creates one, so without it nothing is memoised and every run detects the portraits' faces afresh
    (about a second), which no studio's farm does."""
    figures: dict[Path, dict[str, Figures]] = {repo: {} for repo in repos}
    for repo in repos:
        for name in (f"data-{repo.name}", f"data-{repo.name}-db"):  # a kept scratch dir's databases go
            shutil.rmtree(scratch / name, ignore_errors=True)
            (scratch / name).mkdir(parents=True)
    for command in COMMANDS:
        verb, *flags = ["plan", "--json"] if command == "plan, db" else command.split()
        for run in range(repeats + 1):
            for repo in repos:
                python = which_python(repo)
                data_dir = scratch / (f"data-{repo.name}-db" if command == "plan, db" else f"data-{repo.name}")
                if command == "plan, db" and run == 0:
                    env = {**os.environ, "PYTHONPATH": str(repo)}
                    upgrade = [str(python), "-m", "farm", "db", "upgrade", "--data-dir", str(data_dir)]
                    subprocess.run(upgrade, cwd=repo, env=env, capture_output=True, check=True)
                measured = run_farm(repo, python, [verb, str(shot_list), *flags], data_dir)
                best = figures[repo].get(command)
                if run > 0 and (best is None or measured[0] < best[0]):
                    figures[repo][command] = measured
    return figures


def print_side_by_side(repos: list[Path], figures: dict[Path, dict[str, Figures]]) -> None:
    print(f"\n{'end to end':<14}" + "".join(f"{str(repo)[-32:]:>36}" for repo in repos))
    for command in COMMANDS:
        cells = []
        for repo in repos:
            wall, cpu, peak, code, tail, _ = figures[repo][command]
            cells.append(f"{wall:6.2f} s ({cpu:5.2f} s CPU) {peak:5.0f} MB" + ("" if code == 0 else f" exit {code}"))
            if code != 0:
                print(f"  {repo} {command} failed: {tail.strip()}", file=sys.stderr)
        print(f"{command:<14}" + "".join(f"{cell:>36}" for cell in cells))
        if len(repos) > 1:
            before, after = figures[repos[0]][command], figures[repos[-1]][command]
            print(
                f"{'':<50}{before[0] / after[0]:6.1f}x faster, {before[1] / after[1]:.1f}x less CPU, "
                f"{before[2] / after[2]:.1f}x less memory"
            )
    keys = {figures[repo][command][5] for repo in repos for command in ("plan --json", "plan, db")}
    if len(repos) > 1:
        same = len(keys) == 1 and "" not in keys
        print(f"cache keys of the plans: {'byte-identical' if same else 'DIFFERENT'} (sha256 of all: {min(keys)[:16]})")
    print("target: each under 3 s and 300 MB")


def stages(shot_list: Path, data_dir: Path) -> list[tuple[str, float, float]]:
    """(stage, seconds, tracemalloc peak MB) for this checkout's front end, in process and cold."""
    sys.path.insert(0, str(REPO))
    from farm.catalog import ModelCatalog
    from farm.paths import display_path
    from farm.plan import plan_shot_list
    from farm.shotlist.load import _build_shot_list
    from farm.shotlist.schema_check import schema_findings
    from farm.shotlist.semantic import SemanticContext, semantic_findings
    from farm.shotlist.yaml_source import load_located_yaml

    catalog = ModelCatalog(REPO / "models")
    name = display_path(shot_list)
    face_memo = data_dir / "faces.json"
    results: list[tuple[str, float, float]] = []
    state: dict[str, Any] = {}

    def measure(label: str, step: Callable[[], Any]) -> Any:
        tracemalloc.start()
        start = time.perf_counter()
        value = step()
        seconds = time.perf_counter() - start
        peak = tracemalloc.get_traced_memory()[1] / 2**20
        tracemalloc.stop()
        results.append((label, seconds, peak))
        return value

    state["doc"] = measure("YAML load (located)", lambda: load_located_yaml(shot_list, name))
    findings, error_paths = measure("JSON Schema", lambda: schema_findings(state["doc"], name))
    context = SemanticContext(
        state["doc"],
        name,
        shot_list.parent,
        catalog,
        600.0,
        schema_error_paths=error_paths,
        face_memo=face_memo,
    )
    findings += measure("semantic checks", lambda: semantic_findings(context))
    errors = [f for f in findings if f.severity == "error"]
    if errors:
        raise SystemExit(f"the generated list is invalid: {errors[0].format()}")
    built = measure("build ShotList", lambda: _build_shot_list(state["doc"], shot_list.resolve()))
    measure(
        "plan (keys, slices)",
        lambda: plan_shot_list(built, catalog, digest_memo=data_dir / "digests.json", face_memo=face_memo),
    )
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--shots", type=int, default=10_000)
    parser.add_argument("--before", default="/work/main", help="checkout measured as 'before' ('none' to skip)")
    parser.add_argument("--keep", type=Path, help="build the list in this folder and keep it")
    parser.add_argument("--repeats", type=int, default=3, help="measured runs of each command (the fastest is shown)")
    args = parser.parse_args()

    scratch = args.keep or Path(tempfile.mkdtemp(prefix="farm-frontend-"))
    scratch.mkdir(parents=True, exist_ok=True)
    try:
        start = time.perf_counter()
        shot_list = scratch / "list" / "episode.yaml"
        if not shot_list.exists():
            write_shot_list(scratch / "list", args.shots)
        size = (scratch / "list" / "media" / "dialogue.wav").stat().st_size / 2**20
        print(
            f"{args.shots} shots, {shot_list.stat().st_size / 2**20:.1f} MB of YAML, a {size:.0f} MB dialogue WAV "
            f"(generated in {time.perf_counter() - start:.1f} s)"
        )
        repos = [Path(args.before)] if args.before != "none" else []
        repos.append(REPO)
        figures = end_to_end(repos, shot_list, scratch, args.repeats)
        print_side_by_side(repos, figures)
        print(f"\nstages of {REPO} in process (cold caches; tracemalloc peak, Python heap only)")
        for label, seconds, peak in stages(shot_list, scratch / "data-stages"):
            print(f"  {label:<22}{seconds:8.2f} s {peak:8.1f} MB")
    finally:
        if args.keep is None:
            shutil.rmtree(scratch, ignore_errors=True)


if __name__ == "__main__":
    main()
