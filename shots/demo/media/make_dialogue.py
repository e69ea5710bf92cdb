"""Regenerate the demo's dialogue tracks with espeak-ng (apt-get install espeak-ng).

Each scene's track is its lines spoken one after another with a short pause between them, as a
dialogue editor would lay them out, resampled to 16 kHz mono 16-bit WAV. The script prints every
line's start and end so the shot list's timecodes can be checked against it.

    python shots/demo/media/make_dialogue.py
"""

from __future__ import annotations

import subprocess
import tempfile
import wave
from pathlib import Path

import imageio_ffmpeg
import numpy as np

HERE = Path(__file__).resolve().parent
RATE = 16_000
PAUSE_SECONDS = 0.35
VOICES = {"marcus": ("en-us", 150, 45), "walter": ("en-gb-x-rp", 140, 35)}  # voice, words/min, pitch
SCENES = {
    "sc01_dialogue.wav": [
        ("marcus", "We finish the episode tonight."),
        ("walter", "Every shot, before dawn?"),
        ("marcus", "Every shot. Send it to the farm."),
    ],
    "sc02_dialogue.wav": [
        ("walter", "The farm is done. The edit looks clean."),
        ("marcus", "Then we can all go home."),
        ("walter", "Good night."),
    ],
}


def speak(character: str, text: str) -> np.ndarray:
    voice, speed, pitch = VOICES[character]
    with tempfile.TemporaryDirectory() as scratch:
        raw = Path(scratch) / "line.wav"
        subprocess.run(["espeak-ng", "-v", voice, "-s", str(speed), "-p", str(pitch), "-w", str(raw), text],
                       check=True)
        pcm = subprocess.run(
            [imageio_ffmpeg.get_ffmpeg_exe(), "-v", "error", "-i", str(raw), "-ac", "1", "-ar", str(RATE),
             "-f", "s16le", "-"],
            check=True, capture_output=True,
        ).stdout
    samples = np.frombuffer(pcm, dtype=np.int16)
    voiced = np.flatnonzero(np.abs(samples) > 200)
    return samples[voiced[0] : voiced[-1] + 1]  # trim espeak's leading and trailing silence


def main() -> None:
    pause = np.zeros(int(PAUSE_SECONDS * RATE), dtype=np.int16)
    for file_name, lines in SCENES.items():
        pieces = [pause]
        cursor = len(pause)
        print(file_name)
        for character, text in lines:
            speech = speak(character, text)
            print(f"  {cursor / RATE:7.3f} - {(cursor + len(speech)) / RATE:7.3f}  {character}: {text}")
            pieces += [speech, pause]
            cursor += len(speech) + len(pause)
        track = np.concatenate(pieces)
        with wave.open(str(HERE / file_name), "wb") as out:
            out.setnchannels(1)
            out.setsampwidth(2)
            out.setframerate(RATE)
            out.writeframes(track.tobytes())


if __name__ == "__main__":
    main()
