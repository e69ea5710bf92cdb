"""Long takes: does a take's memory stay flat, and its colour and identity hold, however long it runs?

    python bench/long_take.py [--previz-seconds 30 1800] [--width 240 --height 416] [--tiny-seconds 2 20]

Two pairs of takes, each measured side by side, each take in a fresh process that renders exactly what a
worker renders for a task with segments (``farm.engine.takes.render_take`` into a ``ShotVideoWriter``,
audio fetched one segment at a time, as the worker fetches its pieces from the object store):

- previz, a 30-second and a 30-minute synthetic monologue (noise phrases of 2-9 s between 0.2-0.9 s
  pauses), split with the previz manifest's segment bounds: peak RSS ratio, target <= 1.2x;
- the tiny diffusion model (tests/tiny_wan.py weights, 32x32), a take and a 10x longer one, split at
  1.2-2.4 s: peak RSS ratio, target <= 1.5x.

Peak RSS is the take process's own high-water mark (VmHWM; the ffmpeg encoder, a child of constant
size, is not counted).
For each take the colour (CIEDE2000 of the mean Lab colour of the first and last half second) and, for
previz, the identity (dlib descriptor distance of the first and last frame's face to the reference
portrait) are reported at the start and the end.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
import wave
from collections import deque
from fractions import Fraction
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from farm.avatar.base import RenderRequest  # noqa: E402
from farm.catalog import SegmentPolicy  # noqa: E402
from farm.media.audio import write_wav_chunks  # noqa: E402
from farm.plan import take_segments as plan_segments  # noqa: E402
from farm.shotlist.types import CameraMove, CameraSpec  # noqa: E402

FPS = Fraction(25)
RATE = 16_000
DEMO_MEDIA = REPO / "shots" / "demo" / "media"


def monologue(seconds: float, seed: int = 0) -> np.ndarray:
    """Syllable-shaped noise phrases between pauses, ``seconds`` long (int16)."""
    rng = np.random.default_rng(seed)
    total = round(seconds * RATE)
    pieces, length = [], 0
    while length < total:
        phrase = round(rng.uniform(2.0, 9.0) * RATE)
        time_axis = np.arange(phrase) / RATE
        envelope = 0.55 + 0.45 * np.sin(2 * np.pi * rng.uniform(3, 5) * time_axis)
        pieces.append((6000 * envelope * rng.standard_normal(phrase)).astype(np.int16))
        pause = round(rng.uniform(0.2, 0.9) * RATE)
        pieces.append((30 * rng.standard_normal(pause)).astype(np.int16))
        length += phrase + pause
    return np.concatenate(pieces)[:total]


# --- the child: one take, measured -------------------------------------------------------------------------


def wav_segments(path: Path, segments: tuple[int, ...]):
    """Each segment's samples read from the take's wav when it renders: nothing else of the audio is held."""
    from farm.engine.takes import take_segments

    plan = take_segments(segments, FPS, 0)

    def read(index: int) -> np.ndarray:
        with wave.open(str(path), "rb") as source:
            source.setpos(plan[index].first_sample)
            count = plan[index].end_sample - plan[index].first_sample
            return np.frombuffer(source.readframes(count), "<i2").astype(np.int16)

    return read


def child(arguments: argparse.Namespace) -> None:
    import torch

    from farm.avatar.registry import create_model
    from farm.catalog import ModelCatalog, load_manifest
    from farm.engine.takes import render_take
    from farm.media.image import load_rgb
    from farm.media.video import ShotVideoWriter

    torch.set_num_threads(1)
    job = json.loads(Path(arguments.child).read_text())
    segments = tuple(job["segments"])
    frames = sum(segments)
    if job["model"] == "previz":
        manifest = ModelCatalog(REPO / "models").get("previz")
        reference = load_rgb(DEMO_MEDIA / "marcus.jpg")
        steps, text, audio_guidance = 1, 0.0, 0.0
    else:
        manifest = load_manifest(Path(job["manifest"]))
        from tests.tiny_wan import portrait

        reference = portrait(48)
        steps, text, audio_guidance = 2, 3.0, 4.0
    model = create_model(manifest)
    model.load("cpu")
    request = RenderRequest(
        shot_id="take",
        reference_image=reference,
        audio=np.zeros(0, np.float32),
        sample_rate=RATE,
        prompt="a man speaks",
        negative_prompt="",
        camera=CameraSpec(CameraMove(job["camera"]), 0.3),
        fps=FPS,
        width=job["width"],
        height=job["height"],
        frames=frames,
        seed=7,
        steps=steps,
        text_guidance=text,
        audio_guidance=audio_guidance,
    )
    audio = wav_segments(Path(job["audio"]), segments)
    started = time.perf_counter()
    with ShotVideoWriter(
        Path(job["video"]),
        width=request.width,
        height=request.height,
        fps=FPS,
        frames=frames,
        audio_chunks=(audio(index) for index in range(len(segments))),
        audio_rate=RATE,
    ) as sink:
        result = render_take(model, request, segments, job["reanchor_every"], audio, sink, lambda *_: None)
    seconds = time.perf_counter() - started
    print(json.dumps({"peak_mb": peak_rss_mb(), "seconds": seconds, "seams": len(result.seams)}))


def peak_rss_mb() -> float:
    """This process's peak resident memory since its exec (VmHWM). Not ``ru_maxrss``: Linux carries that
    over from the parent across exec, so the child of a parent holding 30 minutes of audio would report
    the parent's peak."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise SystemExit("no VmHWM in /proc/self/status: this benchmark needs Linux")


# --- the parent: prepare, run side by side, compare --------------------------------------------------------


def run_take(work: Path, name: str, model: str, seconds: float, policy: SegmentPolicy, **job: object) -> dict:
    samples = monologue(seconds)
    frames = round(Fraction(len(samples), RATE) * FPS)
    samples = samples[: round(Fraction(frames) / FPS * RATE)]
    segments = plan_segments(samples, frames, FPS, policy) or (frames,)
    audio = work / f"{name}.wav"
    write_wav_chunks(audio, (samples,), RATE)
    del samples
    spec = {
        "model": model,
        "segments": list(segments),
        "audio": str(audio),
        "video": str(work / f"{name}.mp4"),
        "reanchor_every": policy.reanchor_every,
        **job,
    }
    (work / f"{name}.json").write_text(json.dumps(spec))
    output = subprocess.run(
        [sys.executable, __file__, "--child", str(work / f"{name}.json")], capture_output=True, text=True, check=False
    )
    if output.returncode:
        raise SystemExit(f"{name} failed:\n{output.stderr[-3000:]}")
    measured = json.loads(output.stdout.strip().splitlines()[-1])
    measured.update(frames=frames, segments=len(segments), **drift(Path(spec["video"]), model == "previz"))
    return measured


def drift(video: Path, faces: bool) -> dict[str, float | None]:
    """Colour of the last half second against the first, and each end's face against the reference."""
    from skimage.color import deltaE_ciede2000

    from farm.edit.analysis import lab_stats
    from farm.media.faces import identity_distance, image_identity, portrait_identity
    from farm.media.video import read_frames

    edge = round(FPS / 2)
    head: list[np.ndarray] = []
    tail: deque[np.ndarray] = deque(maxlen=edge)
    for frame in read_frames(video):
        if len(head) < edge:
            head.append(frame)
        tail.append(frame)
    first, last = lab_stats(head), lab_stats(list(tail))
    found: dict[str, float | None] = {
        "colour_start_end_de00": float(deltaE_ciede2000(np.array(first.mean), np.array(last.mean)))
    }
    if faces:
        reference = portrait_identity(DEMO_MEDIA / "marcus.jpg")
        for name, frame in (("identity_start", head[0]), ("identity_end", tail[-1])):
            face = image_identity(frame)
            found[name] = None if face is None or reference is None else identity_distance(face, reference)
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--previz-seconds", type=float, nargs=2, default=(30.0, 1800.0))
    parser.add_argument("--width", type=int, default=240)
    parser.add_argument("--height", type=int, default=416)
    parser.add_argument("--tiny-seconds", type=float, nargs=2, default=(2.0, 20.0))
    parser.add_argument("--skip-previz", action="store_true")
    parser.add_argument("--skip-tiny", action="store_true")
    arguments = parser.parse_args()
    if arguments.child:
        child(arguments)
        return
    from farm.catalog import ModelCatalog

    with tempfile.TemporaryDirectory(prefix="farm-long-take-") as folder:
        work = Path(folder)
        if not arguments.skip_previz:
            policy = ModelCatalog(REPO / "models").get("previz").segments
            assert policy is not None
            size = {"width": arguments.width, "height": arguments.height, "camera": "push_in"}
            short, long = (
                run_take(work, f"previz-{seconds:g}", "previz", seconds, policy, **size)
                for seconds in arguments.previz_seconds
            )
            report("previz", arguments.previz_seconds, short, long, 1.2, f"{arguments.width}x{arguments.height}")
        if not arguments.skip_tiny:
            from tests.tiny_wan import saved_tiny_model, tiny_manifest

            weights = saved_tiny_model(work / "tiny")
            manifest = tiny_manifest(work, weights)
            policy = SegmentPolicy(1.2, 2.4, 3)
            size = {"width": 32, "height": 32, "camera": "static", "manifest": str(manifest.source)}
            short, long = (
                run_take(work, f"tiny-{seconds:g}", "tiny", seconds, policy, **size)
                for seconds in arguments.tiny_seconds
            )
            report("tiny diffusion", arguments.tiny_seconds, short, long, 1.5, "32x32")


def report(name: str, seconds: tuple[float, float], short: dict, long: dict, target: float, size: str) -> None:
    ratio = long["peak_mb"] / short["peak_mb"]
    print(f"\n{name} at {size}, 25 fps: {seconds[0]:g} s vs {seconds[1]:g} s")
    for label, take in (("short", short), ("long", long)):
        identity = (
            f", identity to the reference start {take['identity_start']:.3f} end {take['identity_end']:.3f}"
            if take.get("identity_start") is not None and take.get("identity_end") is not None
            else ""
        )
        print(
            f"  {label:5} {take['frames']:6} frames in {take['segments']:3} segments, {take['seconds']:7.1f} s, "
            f"peak RSS {take['peak_mb']:7.1f} MB, "
            f"colour start-end dE00 {take['colour_start_end_de00']:.2f}{identity}"
        )
    verdict = "meets" if ratio <= target else "MISSES"
    print(f"  peak RSS ratio long/short {ratio:.3f}x ({verdict} the target of {target}x)")


if __name__ == "__main__":
    main()
