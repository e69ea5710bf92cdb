"""Media libraries side by side, in one run: why farm probes and decodes frames with PyAV, and not pydub.

    python bench/media_tools.py [--minutes 10] [--seconds 5 --width 1280 --height 720] [--work DIR] [--json FILE]

1. probing a shot: PyAV in-process (farm's probe_stream / probe_video) against an ffmpeg process, the
   only prober imageio-ffmpeg ships (no ffprobe): ``ffmpeg -i`` for the header, ``-c copy -f null``
   for an exact frame count;
2. reading a shot's frames as RGB arrays: PyAV (farm's read_frames) against an ffmpeg process piping
   rawvideo, frames per second and how far the pixels differ;
3. decoding dialogue delivered as MP3 or AAC to farm's 16 kHz mono samples: farm's decode_audio (one
   ffmpeg process, built by farm.media.ffmpeg) against pydub (AudioSegment.from_file, then pydub's own
   channel mix and resampler), time, peak Python memory, and whether the samples are the same;
4. finding speech pauses (pydub.silence.detect_silence against the same definition in numpy);
5. what ffmpeg-python costs: building one command line (and, under imports, importing each library);
6. loudness of the whole track: farm's streaming meter (pyloudnorm's K-weighting run by scipy's lfilter,
   one second at a time) against pyloudnorm's whole-array meter and ffmpeg's ebur128.

The dialogue is the demo's real speech (lines with pauses between them) repeated to ``--minutes``; the
shot is the demo portrait panning, written by farm's ShotVideoWriter. Each timing is the best of
``--repeat`` runs. pydub is only needed for this script: ``pip install -e .[bench]``.
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import subprocess
import sys
import tempfile
import time
import tracemalloc
from collections.abc import Callable
from fractions import Fraction
from pathlib import Path
from typing import Any, TypeVar

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from farm.media.audio import decode_audio, write_wav
from farm.media.ffmpeg import DEFAULT_ENCODE, decode_to_pcm, encode_rgb_frames, ffmpeg_executable, run
from farm.media.image import load_rgb
from farm.media.video import ShotVideoWriter, probe_stream, probe_video, read_frames

DEMO_MEDIA = Path(__file__).resolve().parents[1] / "shots" / "demo" / "media"
MODEL_RATE = 16_000
DELIVERY_RATE = 48_000
Result = TypeVar("Result")


def best_of(repeat: int, work: Callable[[], Result]) -> tuple[float, Result]:
    """The fastest of ``repeat`` runs (seconds) and the last run's result."""
    fastest = float("inf")
    for _ in range(repeat):
        started = time.perf_counter()
        result = work()
        fastest = min(fastest, time.perf_counter() - started)
    return fastest, result


def python_peak_mib(work: Callable[[], Result]) -> tuple[float, Result]:
    """Peak Python heap (numpy buffers included) while ``work`` runs; ffmpeg children are not counted."""
    tracemalloc.start()
    try:
        result = work()
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return peak / 2**20, result


def ffmpeg_process(*arguments: str, stdout: int = subprocess.DEVNULL) -> subprocess.CompletedProcess[bytes]:
    command = [ffmpeg_executable(), "-nostdin", "-hide_banner", *arguments]
    return subprocess.run(command, stdout=stdout, stderr=subprocess.PIPE, check=False)


# -- inputs ------------------------------------------------------------------------------------------


def make_shot(path: Path, seconds: float, width: int, height: int) -> Path:
    """The demo portrait panning across the frame: real picture content, so decoding costs what it does."""
    portrait = load_rgb(DEMO_MEDIA / "marcus.jpg")
    from PIL import Image

    canvas = np.asarray(Image.fromarray(portrait).resize((width * 2, height)))
    frames = round(seconds * 25)
    with ShotVideoWriter(path, width=width, height=height, fps=Fraction(25), frames=frames) as writer:
        for index in range(frames):
            left = index * width // frames
            writer.write(np.ascontiguousarray(canvas[:, left : left + width]))
    return path


def make_dialogue(work: Path, minutes: float) -> dict[str, Path]:
    """The demo's speech repeated to ``minutes``, as delivered: 48 kHz mono MP3 and AAC (and a WAV)."""
    speech = np.concatenate([decode_audio(DEMO_MEDIA / name) for name in ("sc01_dialogue.wav", "sc02_dialogue.wav")])
    repeats = int(np.ceil(minutes * 60 * MODEL_RATE / len(speech)))
    track = np.tile(speech, repeats)[: round(minutes * 60 * MODEL_RATE)]
    wav = work / "dialogue_16k.wav"
    write_wav(wav, track, MODEL_RATE)
    files = {"wav": wav}
    for kind, codec in (("mp3", "libmp3lame"), ("m4a", "aac")):
        files[kind] = work / f"dialogue.{kind}"
        done = ffmpeg_process(
            "-y", "-i", str(wav), "-ar", str(DELIVERY_RATE), "-c:a", codec, "-b:a", "128k", str(files[kind])
        )
        if done.returncode:
            raise SystemExit(f"cannot encode the {kind} dialogue: {done.stderr.decode(errors='replace')[-300:]}")
    return files


# -- 1. probing -------------------------------------------------------------------------------------


def probe_header_with_a_process(path: Path) -> str:
    """What ``ffmpeg -i`` says of the video stream (it exits 1: no output given); no extradata, no count."""
    log = ffmpeg_process("-i", str(path)).stderr.decode(errors="replace")
    stream = re.search(r"Stream #0:\d+.*Video: (.*)", log)
    if stream is None:
        raise RuntimeError(f"{path}: ffmpeg -i printed no video stream")
    return stream.group(1)


def count_frames_with_a_process(path: Path) -> int:
    log = ffmpeg_process("-i", str(path), "-map", "0:v:0", "-c", "copy", "-f", "null", "-").stderr.decode()
    counts = re.findall(r"frame=\s*(\d+)", log)
    if not counts:
        raise RuntimeError(f"{path}: ffmpeg printed no frame count")
    return int(counts[-1])


def bench_probing(shot: Path, repeat: int) -> dict[str, Any]:
    probe_stream(shot)  # PyAV is imported on first use; that cost is reported once, under "imports"
    pyav_header, (_, header_frames) = best_of(repeat, lambda: probe_stream(shot))
    process_header, _ = best_of(repeat, lambda: probe_header_with_a_process(shot))
    pyav_count, info = best_of(repeat, lambda: probe_video(shot))
    process_count, counted = best_of(repeat, lambda: count_frames_with_a_process(shot))
    assert info.frames == counted == header_frames, (info.frames, counted, header_frames)
    return {
        "header_ms": {"pyav": pyav_header * 1e3, "ffmpeg_process": process_header * 1e3},
        "exact_frame_count_ms": {"pyav": pyav_count * 1e3, "ffmpeg_process": process_count * 1e3},
        "frames": info.frames,
    }


# -- 2. frames --------------------------------------------------------------------------------------


def frames_with_a_process(path: Path, width: int, height: int) -> list[np.ndarray]:
    """rgb24 from an ffmpeg process on a pipe, read one frame at a time (as a consumer would)."""
    command = [ffmpeg_executable(), "-nostdin", "-v", "error", "-i", str(path), "-f", "rawvideo", "-pix_fmt", "rgb24"]
    process = subprocess.Popen([*command, "pipe:"], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    assert process.stdout is not None
    size = width * height * 3
    frames = []
    while chunk := process.stdout.read(size):
        frames.append(np.frombuffer(chunk, np.uint8).reshape(height, width, 3))
    process.wait()
    return frames


def bench_frames(shot: Path, width: int, height: int, repeat: int) -> dict[str, Any]:
    pyav_seconds, pyav = best_of(repeat, lambda: list(read_frames(shot)))
    process_seconds, piped = best_of(repeat, lambda: frames_with_a_process(shot, width, height))
    assert len(pyav) == len(piped)
    difference = max(int(np.abs(a.astype(np.int16) - b).max()) for a, b in zip(pyav, piped, strict=True))
    return {
        "frames_per_second": {"pyav": len(pyav) / pyav_seconds, "ffmpeg_process": len(piped) / process_seconds},
        "largest_pixel_difference": difference,
    }


# -- 3. dialogue ------------------------------------------------------------------------------------


def pydub_samples(path: Path, **options: Any) -> tuple[np.ndarray, int]:
    """pydub's way: decode with its own ffmpeg command, then its own mix to mono and resampler (audioop)."""
    from pydub import AudioSegment

    segment = AudioSegment.from_file(str(path), **options).set_channels(1).set_frame_rate(MODEL_RATE)
    return np.array(segment.get_array_of_samples(), dtype=np.int16), segment.frame_rate


def farm_samples(path: Path) -> np.ndarray:
    """What decode_audio does on a cache miss (it memoises by path, size and mtime)."""
    return np.frombuffer(run(decode_to_pcm(path, sample_rate=MODEL_RATE), f"{path}: decoding audio").stdout, np.int16)


def compare_samples(reference: np.ndarray, other: np.ndarray) -> dict[str, Any]:
    length = min(len(reference), len(other))
    error = reference[:length].astype(np.float64) - other[:length]
    signal = np.mean(reference[:length].astype(np.float64) ** 2)
    return {
        "samples": len(other),
        "reference_samples": len(reference),
        "identical": bool(len(reference) == len(other) and not error.any()),
        "largest_difference": int(np.abs(error).max()) if length else None,
        "snr_db": float(10 * np.log10(signal / np.mean(error**2))) if error.any() else None,
    }


def bench_dialogue(files: dict[str, Path], repeat: int) -> dict[str, Any]:
    try:
        from pydub import AudioSegment
    except ImportError:
        return {"skipped": "pydub is not installed (pip install -e .[bench])"}
    AudioSegment.converter = ffmpeg_executable()
    results: dict[str, Any] = {}
    for kind, codec in (("mp3", "mp3"), ("m4a", "aac")):
        path = files[kind]
        farm_seconds, reference = best_of(repeat, lambda path=path: farm_samples(path))
        farm_memory, _ = python_peak_mib(lambda path=path: farm_samples(path))
        row: dict[str, Any] = {"farm": {"seconds": farm_seconds, "python_peak_mib": farm_memory}}
        try:
            pydub_samples(path)
            row["pydub_default"] = "decoded"
        except Exception as exc:  # recorded: from_file asks ffprobe for the sample format unless given a codec
            row["pydub_default"] = f"fails: {type(exc).__name__}: {exc}"
        pydub_seconds, (samples, rate) = best_of(repeat, lambda path=path, c=codec: pydub_samples(path, codec=c))
        pydub_memory, _ = python_peak_mib(lambda path=path, c=codec: pydub_samples(path, codec=c))
        row["pydub_codec_given"] = {
            "seconds": pydub_seconds,
            "python_peak_mib": pydub_memory,
            "rate": rate,
            **compare_samples(reference, samples),
        }
        results[kind] = row
    return results


# -- 4. pauses --------------------------------------------------------------------------------------


def pauses_with_numpy(samples: np.ndarray, rate: int, min_ms: int, thresh_db: float, step_ms: int) -> list[list[int]]:
    """pydub.silence.detect_silence's definition (windows of ``min_ms`` every ``step_ms`` with RMS under the
    threshold, overlapping ones merged), on a running sum of squares instead of a slice per window."""
    per_ms = rate / 1000
    window = int(min_ms * per_ms)
    squares = np.concatenate([[0.0], np.cumsum(samples.astype(np.float64) ** 2)])
    last = int(len(samples) / per_ms) - min_ms
    starts_ms = np.arange(0, last + 1, step_ms)
    first = (starts_ms * per_ms).astype(np.int64)
    rms = np.sqrt((squares[first + window] - squares[first]) / window)
    quiet = starts_ms[rms <= 10 ** (thresh_db / 20) * 32768]
    ranges: list[list[int]] = []
    for start in quiet.tolist():
        if ranges and start <= ranges[-1][1]:
            ranges[-1][1] = start + min_ms
        else:
            ranges.append([start, start + min_ms])
    return ranges


def bench_pauses(wav: Path, repeat: int) -> dict[str, Any]:
    samples = decode_audio(wav)
    options = {"min_ms": 200, "thresh_db": -40.0, "step_ms": 10}
    numpy_seconds, found = best_of(repeat, lambda: pauses_with_numpy(samples, MODEL_RATE, **options))
    row: dict[str, Any] = {"numpy": {"seconds": numpy_seconds, "pauses": len(found)}, "settings": options}
    try:
        from pydub import AudioSegment, silence
    except ImportError:
        row["pydub"] = "skipped: pydub is not installed"
        return row
    segment = AudioSegment.from_wav(str(wav))
    pydub_seconds, reference = best_of(
        1,
        lambda: silence.detect_silence(
            segment,
            min_silence_len=options["min_ms"],
            silence_thresh=options["thresh_db"],
            seek_step=options["step_ms"],
        ),
    )
    edges = [abs(a - b) for x, y in zip(reference, found, strict=False) for a, b in zip(x, y, strict=True)]
    row["pydub"] = {"seconds": pydub_seconds, "pauses": len(reference)}
    row["largest_edge_difference_ms"] = max(edges) if edges and len(reference) == len(found) else None
    return row


# -- 6. loudness -------------------------------------------------------------------------------------


def bench_loudness(wav: Path, repeat: int) -> dict[str, Any]:
    import pyloudnorm

    from farm.edit.loudness import LoudnessMeter, measure_loudness

    samples = decode_audio(wav).astype(np.float64) / 32768.0

    def streaming() -> float | None:
        meter = LoudnessMeter(MODEL_RATE)
        for start in range(0, len(samples), MODEL_RATE):
            meter.feed(samples[start : start + MODEL_RATE])
        return meter.integrated()

    def whole_array() -> float:
        return float(pyloudnorm.Meter(MODEL_RATE).integrated_loudness(samples))

    rows: dict[str, Any] = {}
    for name, work in (("farm_streaming_meter", streaming), ("pyloudnorm_whole_array", whole_array)):
        seconds, lufs = best_of(repeat, work)
        memory, _ = python_peak_mib(work)
        rows[name] = {"seconds": seconds, "python_peak_mib": memory, "lufs": lufs}
    seconds, measured = best_of(repeat, lambda: measure_loudness(wav, duplicate_mono_to_stereo=False))
    rows["ffmpeg_ebur128"] = {"seconds": seconds, "lufs": measured.integrated_lufs}
    return rows


# -- 5. ffmpeg-python ---------------------------------------------------------------------------------


def bench_command_builder(work: Path) -> dict[str, Any]:
    builds = 1000
    seconds, _ = best_of(
        3,
        lambda: [
            encode_rgb_frames(
                work / "x.mp4", width=1280, height=720, fps=Fraction(25), audio=work / "a.wav", settings=DEFAULT_ENCODE
            )
            for _ in range(builds)
        ],
    )
    return {"build_one_command_us": seconds / builds * 1e6}


def bench_imports() -> dict[str, float | None]:
    """Milliseconds each library adds to a fresh interpreter (once per process); None if not installed."""

    def interpreter(code: str) -> subprocess.CompletedProcess[bytes]:
        return subprocess.run([sys.executable, "-W", "ignore", "-c", code], capture_output=True, check=False)

    bare, _ = best_of(3, lambda: interpreter("pass"))
    costs: dict[str, float | None] = {}
    for module in ("av", "ffmpeg", "pydub"):
        seconds, done = best_of(3, lambda module=module: interpreter(f"import {module}"))
        costs[module] = (seconds - bare) * 1e3 if done.returncode == 0 else None
    return costs


# -- report ------------------------------------------------------------------------------------------


def rounded(value: Any) -> Any:
    if isinstance(value, float):
        return round(value, 3)
    if isinstance(value, dict):
        return {key: rounded(item) for key, item in value.items()}
    return value


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=float, default=10.0, help="length of the dialogue track")
    parser.add_argument("--seconds", type=float, default=5.0, help="length of the shot")
    parser.add_argument("--width", type=int, default=1280)
    parser.add_argument("--height", type=int, default=720)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--work", type=Path, help="keep the generated media here (default: a temporary folder)")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args()
    work = args.work or Path(tempfile.mkdtemp(prefix="farm-media-bench."))
    work.mkdir(parents=True, exist_ok=True)
    try:
        shot = make_shot(work / "shot.mp4", args.seconds, args.width, args.height)
        files = make_dialogue(work, args.minutes)
        figures = {
            "setup": {
                "shot": f"{args.width}x{args.height}, {args.seconds:g} s at 25 fps",
                "dialogue": f"{args.minutes:g} min, 48 kHz mono, 128 kb/s",
                "ffmpeg": ffmpeg_process("-version", stdout=subprocess.PIPE).stdout.decode().split("\n")[0],
            },
            "probing": bench_probing(shot, args.repeat),
            "frames": bench_frames(shot, args.width, args.height, args.repeat),
            "dialogue": bench_dialogue(files, args.repeat),
            "pauses": bench_pauses(files["wav"], args.repeat),
            "loudness": bench_loudness(files["wav"], args.repeat),
            "ffmpeg_python": bench_command_builder(work),
            "imports_ms": bench_imports(),
        }
    finally:
        if args.work is None:
            shutil.rmtree(work, ignore_errors=True)
    text = json.dumps(rounded(figures), indent=2)
    print(text)
    if args.json:
        args.json.write_text(text + "\n")


if __name__ == "__main__":
    main()
