"""A small valid shot list for tests, with the demo's media, whose line numbers the tests rely on."""

from __future__ import annotations

import shutil
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DEMO_MEDIA = REPO / "shots" / "demo" / "media"

# Line numbers matter: invalid-case tests assert them. Keep the template's layout stable.
TEMPLATE = """\
version: 1
project: Test Show
episode: "07"
output:
  fps: 25
  width: 480
  height: 832
defaults:
  quality: preview
  seed: 7
characters:
  marcus:
    image: media/marcus.jpg
  walter:
    image: media/walter.jpg
audio_tracks:
  sc01:
    file: media/sc01_dialogue.wav
scenes:
  - id: sc01
    shots:
      - id: a
        character: marcus
        audio: {track: sc01, in: 0, out: 2.36}
        prompt: A man speaks
        camera: {move: push_in, intensity: 30%}
      - id: b
        character: walter
        audio: {track: sc01, in: "00:00:02.360", out: "00:00:04:14"}
        prompt: Another man answers
      - id: c
        character: marcus
        audio: {track: sc01, in: 4.56, out: 7.68}
        prompt: The first man again
        continues: a
"""


def make_project(root: Path, text: str = TEMPLATE, name: str = "ep.yaml") -> Path:
    """A project folder with the demo media and a shot list; returns the shot list's path."""
    media = root / "media"
    media.mkdir(parents=True, exist_ok=True)
    for file in ("marcus.jpg", "walter.jpg", "sc01_dialogue.wav"):
        if not (media / file).exists():
            shutil.copy(DEMO_MEDIA / file, media / file)
    path = root / name
    path.write_text(text)
    return path


def replace_once(text: str, old: str, new: str) -> str:
    assert text.count(old) == 1, f"{old!r} occurs {text.count(old)} times in the template"
    return text.replace(old, new)
