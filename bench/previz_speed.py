"""How fast previz renders a 10 s, 480x832, 25 fps shot on one CPU core, and whether memory stays flat.

    python bench/previz_speed.py

Prints frames per second and the real-time factor (render time / shot duration; below 1 is faster than
real time) for a static shot and a push-in, side by side with the camera move alone on the still portrait
(the floor: previz's per-frame cost on top of it is the face animation). The process is pinned to one
core with one thread per library; the figures use the CPU time it was given, which on a shared machine is
what an idle core would take, and the wall time is printed beside them. Then renders a 60 s shot and
compares the process's peak memory with the 10 s one: a streaming renderer needs no more for the longer shot.
"""

from __future__ import annotations

import os

for variable in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[variable] = "1"  # before numpy is imported

import resource  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from fractions import Fraction  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from farm.avatar.base import RenderRequest  # noqa: E402
from farm.avatar.camera import render_camera_video  # noqa: E402
from farm.avatar.registry import create_model  # noqa: E402
from farm.catalog import ModelCatalog  # noqa: E402
from farm.media.audio import decode_audio  # noqa: E402
from farm.media.image import load_rgb  # noqa: E402
from farm.shotlist.types import CameraMove, CameraSpec  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
MEDIA = REPO / "shots" / "demo" / "media"
WIDTH, HEIGHT, FPS, RATE = 480, 832, Fraction(25), 16_000


class DiscardingSink:
    """Counts frames and drops them, so the bench measures rendering, not encoding."""

    def __init__(self) -> None:
        self.frames = 0

    def write(self, frames: np.ndarray) -> None:
        self.frames += len(frames)


def dialogue(seconds: int) -> np.ndarray:
    """The demo's two scenes back to back, looped to ``seconds``."""
    tracks = [decode_audio(MEDIA / name) for name in ("sc01_dialogue.wav", "sc02_dialogue.wav")]
    both = np.concatenate(tracks).astype(np.float32) / 32768
    return np.resize(both, seconds * RATE)


def request(camera: CameraSpec, seconds: int) -> RenderRequest:
    return RenderRequest(
        shot_id="bench",
        reference_image=load_rgb(MEDIA / "marcus.jpg"),
        audio=dialogue(seconds),
        sample_rate=RATE,
        prompt="",
        negative_prompt="",
        camera=camera,
        fps=FPS,
        width=WIDTH,
        height=HEIGHT,
        frames=int(seconds * FPS),
        seed=42,
        steps=1,
        text_guidance=0.0,
        audio_guidance=0.0,
    )


class Stopwatch:
    def __enter__(self) -> Stopwatch:
        self.wall, self.cpu = time.perf_counter(), time.process_time()
        return self

    def __exit__(self, *exc: object) -> None:
        self.wall, self.cpu = time.perf_counter() - self.wall, time.process_time() - self.cpu


def report(label: str, frames: int, watch: Stopwatch) -> None:
    duration = frames / float(FPS)
    print(
        f"{label:<32} {frames / watch.cpu:6.1f} frames/s  {watch.cpu:5.2f} CPU s (wall {watch.wall:5.2f} s) "
        f"for {duration:.0f} s of video: real-time factor {watch.cpu / duration:.2f}, "
        f"{duration / watch.cpu:.1f}x faster than real time"
    )


def peak_memory_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main() -> None:
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})
    model = create_model(ModelCatalog(REPO / "models").get("previz"))
    model.load("cpu")
    model.render(request(CameraSpec(), 1), DiscardingSink(), lambda fraction, phase: None)  # warm caches

    print(f"previz {model.code_version}: {WIDTH}x{HEIGHT} at {FPS} fps, one core")
    for camera in (CameraSpec(CameraMove.STATIC), CameraSpec(CameraMove.PUSH_IN, 0.3)):
        shot = request(camera, 10)
        with Stopwatch() as watch:
            frames = sum(1 for _ in render_camera_video(shot.reference_image, camera, shot.frames, WIDTH, HEIGHT, 42))
        report(f"camera move only ({camera.move.value})", frames, watch)
        sink = DiscardingSink()
        with Stopwatch() as watch:
            model.render(shot, sink, lambda fraction, phase: None)
        report(f"previz ({camera.move.value})", sink.frames, watch)

    after_short = peak_memory_mb()
    sink = DiscardingSink()
    model.render(request(CameraSpec(CameraMove.SWING, 0.3), 60), sink, lambda fraction, phase: None)
    after_long = peak_memory_mb()
    print(
        f"peak memory: {after_short:.0f} MB after the 10 s shots, {after_long:.0f} MB after a 60 s shot "
        f"({sink.frames} frames): ratio {after_long / after_short:.2f}"
    )


if __name__ == "__main__":
    main()
