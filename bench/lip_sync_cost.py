"""Lip-sync analysis cost: decoding a previz shot alone vs decoding it and fitting mouth landmarks per frame.

    python bench/lip_sync_cost.py [--frames 125] [--width 480 --height 832]

Renders marcus speaking scene 1 with previz at the given size, writes it as a shot file, then times, side by
side in one process, (a) decoding every frame and (b) decoding plus ``mouth_openings`` plus the lag search.
Prints ms/frame for each and the ratio, plus the measured lag and correlation (0 and > 0.7 expected).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from fractions import Fraction
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from farm.avatar.base import RenderRequest
from farm.avatar.registry import create_model
from farm.catalog import ModelCatalog
from farm.media.audio import decode_audio
from farm.media.image import load_rgb
from farm.media.lipsync import best_lag, max_lag_frames, mouth_openings, speech_envelope
from farm.media.video import ShotVideoWriter, read_frames
from farm.settings import REPO_ROOT
from farm.shotlist.types import CameraMove, CameraSpec

RATE, FPS = 16_000, Fraction(25)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--frames", type=int, default=125)
    parser.add_argument("--width", type=int, default=480)
    parser.add_argument("--height", type=int, default=832)
    args = parser.parse_args()
    media = REPO_ROOT / "shots" / "demo" / "media"
    audio = decode_audio(media / "sc01_dialogue.wav")[: args.frames * RATE // 25].astype(np.float32) / 32768
    model = create_model(ModelCatalog(REPO_ROOT / "models").get("previz"))
    model.load("cpu")
    with tempfile.TemporaryDirectory() as work:
        path = Path(work) / "shot.mp4"
        request = RenderRequest(
            "bench", load_rgb(media / "marcus.jpg"), audio, RATE, "", "", CameraSpec(CameraMove.PUSH_IN, 0.3),
            FPS, args.width, args.height, args.frames, 1, 1, 0.0, 0.0,
        )  # fmt: skip
        with ShotVideoWriter(path, width=args.width, height=args.height, fps=FPS, frames=args.frames) as writer:
            model.render(request, writer, lambda fraction, phase: None)
        started = time.perf_counter()
        count = sum(1 for _ in read_frames(path))
        decode = (time.perf_counter() - started) / count * 1000
        started = time.perf_counter()
        mouth = mouth_openings(read_frames(path))
        sync = best_lag(mouth, speech_envelope(audio, RATE, FPS, len(mouth)), max_lag_frames(FPS))
        full = (time.perf_counter() - started) / count * 1000
    print(
        f"{args.width}x{args.height}, {count} frames: decode {decode:.2f} ms/frame, "
        f"decode + lip sync {full:.2f} ms/frame"
    )
    print(f"lip-sync analysis costs {full / decode:.1f}x decoding alone ({full - decode:.2f} ms/frame more)")
    print(f"lag {sync.lag_frames:+d} frames, r {sync.correlation:.3f}")


if __name__ == "__main__":
    main()
