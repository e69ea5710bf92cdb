"""Assembly benchmark: N two-second shots into one edit, stream copy vs full re-encode, time and memory.

    python bench/assembly.py [--shots 1000] [--width 320 --height 180] [--work DIR] [--no-reencode]

Shots are made fast: one 2 s shot (25 fps, H.264 + AAC, written by ShotVideoWriter) copied N times,
plus a few odd ones (another size, another CRF) that the stream-copy run must re-encode. Their
dialogue comes from ten 16 kHz tracks, one per "scene", each cut back to back. Both runs assemble the
same shots (edit.mp4 with the audio laid from the tracks and loudness-normalised), side by side in one
process. Wall and CPU seconds are printed for each run (CPU: this process and its ffmpeg children,
which a shared machine's other jobs hardly change). Memory is the peak RSS of this process plus its
ffmpeg children, sampled every 20 ms; a 100-shot copy run is measured too, to show that memory does
not grow with the number of shots.

The edit's audio is encoded in parallel AAC pieces (farm.edit.audio_encode), each metered by the
thread that encoded it (loudness after); the same stream copy
with the audio in one AAC pass (``audio_pieces=1``, the earlier pipeline's encode) runs beside it, and
the loudness of both is printed side by side with ffmpeg's ebur128 measurement of the laid dialogue
(what the earlier pipeline measured the edit with before normalising it), and the metered loudness
of the delivered edit beside ebur128's (what the earlier pipeline measured it with after the mux).
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from fractions import Fraction
from pathlib import Path

import numpy as np
import psutil

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import contextlib

from farm.edit.assemble import AssemblyResult, assemble_edit
from farm.edit.audio_lay import lay_audio
from farm.edit.loudness import LoudnessMeasurement, measure_loudness, normalisation_gain
from farm.edit.timeline import EditShot, edit_spans
from farm.media.audio import AudioSlice, decode_audio, write_wav
from farm.media.ffmpeg import ffmpeg_executable
from farm.media.video import EncodeSettings, ShotVideoWriter, write_concat_list
from farm.shotlist.types import OutputSpec

DEMO_MEDIA = Path(__file__).resolve().parents[1] / "shots" / "demo" / "media"
FPS = Fraction(25)
FRAMES = 50
RATE = 16_000
SCENES = 10
ODD_SHOTS = 4


class PeakMemory:
    """Peak resident memory of this process and all its children, sampled in a thread."""

    def __init__(self, interval: float = 0.02) -> None:
        self.interval = interval
        self.peak = 0
        self.own_peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def _sample(self) -> None:
        me = psutil.Process()
        while not self._stop.is_set():
            total = 0
            # a child that has forked but not yet exec'd ffmpeg shares our pages: not counted twice
            children = [child for child in me.children(recursive=True) if _name(child) != me.name()]
            for process in [me, *children]:
                with contextlib.suppress(psutil.Error):
                    total += process.memory_info().rss
            self.peak = max(self.peak, total)
            with contextlib.suppress(psutil.Error):
                self.own_peak = max(self.own_peak, me.memory_info().rss)
            time.sleep(self.interval)

    def __enter__(self) -> PeakMemory:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def _name(process: psutil.Process) -> str:
    try:
        return process.name()
    except psutil.Error:
        return ""


def dialogue(seconds: float, offset: int) -> np.ndarray:
    """Real speech (the demo's espeak dialogue) looped to ``seconds``: AAC cost depends on content."""
    speech = np.concatenate([decode_audio(DEMO_MEDIA / f"sc0{n}_dialogue.wav", RATE) for n in (1, 2)])
    needed = int(seconds * RATE)
    return np.roll(np.tile(speech, needed // len(speech) + 1), -offset * RATE)[:needed].astype(np.float64) / 32768


def make_shots(root: Path, count: int, width: int, height: int) -> list[EditShot]:
    rng = np.random.default_rng(1)
    per_scene = -(-count // SCENES)
    tracks = []
    for scene in range(SCENES):
        seconds = per_scene * FRAMES / 25 + 1
        track = root / f"scene{scene:02d}.wav"
        write_wav(track, dialogue(seconds, scene), RATE)
        tracks.append(track)
    # a scrolling texture: with grain, it compresses like ordinary footage rather than a flat colour
    coarse = rng.integers(0, 256, (height // 4 + 1, (width + 2 * FRAMES) // 4 + 1, 3), dtype=np.uint8)
    texture = np.repeat(np.repeat(coarse, 4, axis=0), 4, axis=1)[:height]
    frames = np.stack([texture[:, 2 * i : 2 * i + width] for i in range(FRAMES)]).astype(np.int16)
    frames = np.clip(frames + rng.normal(0, 3, frames.shape), 0, 255).astype(np.uint8)  # sensor-like grain
    audio = np.zeros(FRAMES * RATE // 25, np.float32)
    template = root / "template.mp4"
    with ShotVideoWriter(template, width=width, height=height, fps=FPS, frames=FRAMES, audio=audio) as writer:
        writer.write(frames)
    odd = {
        1: ("crf30.mp4", width, height, EncodeSettings(crf=30)),
        2: ("small.mp4", width // 2 // 2 * 2, height // 2 // 2 * 2, EncodeSettings()),
    }
    for name, w, h, settings in odd.values():
        small = np.ascontiguousarray(frames[:, :h, :w])
        with ShotVideoWriter(
            root / name, width=w, height=h, fps=FPS, frames=FRAMES, audio=audio, settings=settings
        ) as wr:
            wr.write(small)
    odd_positions = {round(i * count / ODD_SHOTS) + 1: 1 + i % 2 for i in range(ODD_SHOTS)}
    shots = []
    for index in range(count):
        path = root / f"shot{index:05d}.mp4"
        source = root / odd[odd_positions[index]][0] if index in odd_positions else template
        shutil.copyfile(source, path)
        scene, position = divmod(index, per_scene)
        start = position * FRAMES * RATE // 25
        audio_slice = AudioSlice(f"sc{scene}", tracks[scene], start, start + FRAMES * RATE // 25, "bench")
        shots.append(EditShot(f"s{index:05d}", f"sc{scene}", "c", index, path, "bench", FRAMES, FPS, audio_slice))
    return shots


def run(label: str, shots: list[EditShot], out: Path, output: OutputSpec, **options: object) -> AssemblyResult:
    with PeakMemory() as memory:
        started, cpu_started = time.perf_counter(), _cpu_seconds()
        result = assemble_edit(shots, out, output=output, **options)  # type: ignore[arg-type]
        seconds, cpu = time.perf_counter() - started, _cpu_seconds() - cpu_started
    source_bytes = sum(shot.video.stat().st_size for shot in shots)
    print(
        f"{label:<22} {len(shots):>5} shots {result.frames:>6} frames  {seconds:7.1f} s  (CPU {cpu:5.1f} s)  "
        f"{source_bytes / seconds / 1e6:7.1f} MB/s in  {result.bytes / seconds / 1e6:6.1f} MB/s out  "
        f"{result.frames / seconds:7.0f} frames/s  copied {result.copied:>5}  re-encoded {result.reencoded:>5}  "
        f"peak RSS {memory.peak / 2**20:6.0f} MiB (python alone {memory.own_peak / 2**20:4.0f})",
        flush=True,
    )
    print("    " + ", ".join(f"{name} {seconds:.1f} s" for name, seconds in result.phases.items()), flush=True)
    return result


def _cpu_seconds() -> float:
    """CPU seconds of this process and its finished children (every ffmpeg): on a shared machine the wall
    time depends on the other jobs, the CPU time hardly."""
    times = os.times()
    return times.user + times.system + times.children_user + times.children_system


def video_concat_only(shots: list[EditShot], work: Path) -> None:
    """The video half of a stream-copied assembly alone: ffmpeg's concat demuxer, ``-c copy``, no audio."""
    listing = work / "video-only.ffconcat"
    write_concat_list(listing, [(shot.video, shot.duration) for shot in shots])
    out = work / "video-only.mp4"
    with PeakMemory() as memory:
        started = time.perf_counter()
        subprocess.run(
            [ffmpeg_executable(), "-v", "error", "-y", "-copyts", "-f", "concat", "-safe", "0", "-i", str(listing),
             "-map", "0:v:0", "-c", "copy", "-f", "mp4", str(out)],
            check=True,
        )  # fmt: skip
        seconds = time.perf_counter() - started
    size = sum(shot.video.stat().st_size for shot in shots)
    print(
        f"{'video concat only':<22} {len(shots):>5} shots {len(shots) * FRAMES:>6} frames  {seconds:7.1f} s  "
        f"{size / seconds / 1e6:7.1f} MB/s in  {out.stat().st_size / seconds / 1e6:6.1f} MB/s out  "
        f"{len(shots) * FRAMES / seconds:7.0f} frames/s  peak RSS {memory.peak / 2**20:6.0f} MiB",
        flush=True,
    )


def compare_loudness(shots: list[EditShot], work: Path, copy: AssemblyResult, one_pass: AssemblyResult) -> None:
    """The edit's loudness as assembly measured it, beside ffmpeg's ebur128 on the same laid dialogue (the
    earlier pipeline's measurement) and beside the one-pass encode's delivered file."""
    laid = work / "laid"
    laid.mkdir()
    lay_audio(shots, edit_spans(shots), laid / "edit.wav", laid)
    started = time.perf_counter()
    ebur128 = measure_loudness(laid / "edit.wav")
    seconds = time.perf_counter() - started
    gain = normalisation_gain(ebur128, copy.target_lufs, copy.true_peak_db)
    print(f"loudness (LUFS, dBTP, LU)    {'in-process':>24} {'ebur128 (old)':>24}   difference", flush=True)
    _row("before: integrated", copy.loudness_before, ebur128, "integrated_lufs")
    _row("before: true peak", copy.loudness_before, ebur128, "true_peak_dbtp")
    _row("before: range", copy.loudness_before, ebur128, "loudness_range_lu")
    print(
        f"  gain {copy.normalisation.gain_db:+.2f} dB vs {gain.gain_db:+.2f} dB from ebur128; peak-limited "
        f"{copy.normalisation.peak_limited} vs {gain.peak_limited}; ebur128 of the laid WAV took {seconds:.1f} s"
    )
    print(f"delivered (metered in pieces) {'pieces':>23} {'one AAC pass':>24}   difference", flush=True)
    _row("after: integrated", copy.loudness_after, one_pass.loudness_after, "integrated_lufs")
    _row("after: true peak", copy.loudness_after, one_pass.loudness_after, "true_peak_dbtp")
    _row("after: range", copy.loudness_after, one_pass.loudness_after, "loudness_range_lu")
    started = time.perf_counter()
    delivered = measure_loudness(copy.path, duplicate_mono_to_stereo=False)
    seconds = time.perf_counter() - started
    print(f"delivered edit.mp4            {'metered':>23} {'ebur128 (old)':>24}   difference", flush=True)
    _row("after: integrated", copy.loudness_after, delivered, "integrated_lufs")
    _row("after: true peak", copy.loudness_after, delivered, "true_peak_dbtp")
    _row("after: range", copy.loudness_after, delivered, "loudness_range_lu")
    print(f"  ebur128 of the delivered edit (the old pipeline's last step) took {seconds:.1f} s", flush=True)


def _row(label: str, new: LoudnessMeasurement, old: LoudnessMeasurement, name: str) -> None:
    ours, theirs = getattr(new, name), getattr(old, name)
    difference = f"{ours - theirs:+.2f}" if ours is not None and theirs is not None else "-"
    print(f"  {label:<26} {_value(ours):>24} {_value(theirs):>24}   {difference}", flush=True)


def _value(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--shots", type=int, default=1000)
    parser.add_argument("--width", type=int, default=320)
    parser.add_argument("--height", type=int, default=180)
    parser.add_argument("--work", type=Path, default=None, help="folder for the shots (default: a temp folder)")
    parser.add_argument("--no-reencode", action="store_true", help="skip the full re-encode run (the slowest)")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="farm-bench-", dir=args.work))
    try:
        output = OutputSpec(FPS, args.width, args.height)
        started = time.perf_counter()
        shots = make_shots(work, args.shots, args.width, args.height)
        size = sum(shot.video.stat().st_size for shot in shots) / 1e6
        print(
            f"{args.shots} shots of {FRAMES} frames ({FRAMES / 25:g} s) at {args.width}x{args.height}, "
            f"{size:.0f} MB, made in {time.perf_counter() - started:.1f} s; {psutil.cpu_count()} CPUs",
            flush=True,
        )
        small = shots[: max(1, args.shots // 10)]
        copy_small = run("stream copy (1/10)", small, work / "copy-small", output)
        video_concat_only(shots, work)
        copy = run("stream copy", shots, work / "copy", output)
        one_pass = run("  audio in one AAC pass", shots, work / "one-pass", output, audio_pieces=1)
        print(
            f"stream copy {copy.seconds:.1f} s vs {one_pass.seconds:.1f} s with the audio in one pass: "
            f"{one_pass.seconds / copy.seconds:.1f}x; {copy_small.frames} vs {copy.frames} frames assembled",
            flush=True,
        )
        compare_loudness(shots, work, copy, one_pass)
        if not args.no_reencode:
            reencode = run("full re-encode", shots, work / "reencode", output, reencode_all=True)
            print(f"re-encode / copy time: {reencode.seconds / copy.seconds:.1f}x")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
