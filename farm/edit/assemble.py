"""Shots in edit order -> edit.mp4: video stream-copied where it can be, dialogue laid sample-exact.

The pipeline reads top to bottom in ``assemble_edit``:

1. probe every shot (stream parameters and exact frame count, header and packets only);
2. route each shot: stream copy when its StreamSignature equals what farm's encoder writes at the output
   size and rate and it has exactly its planned frames, re-encode otherwise (a bounded pool of ffmpeg
   processes, one shot each, to the common parameters); steps 1-2 run in a background thread from the
   start, then the re-encodes and the concat demuxer, which joins every shot's video without decoding
   it (``-c copy``), while steps 3-4 run here (the encode waits for the routes: a shot that cannot be
   read stops the assembly before its most expensive step);
3. lay the audio: every shot's slice of its ORIGINAL dialogue track, decoded once per track to a 48 kHz
   WAV on disk (tracks in parallel) and copied chunk by chunk into the edit's WAV, with each shot
   exactly ``frames / fps`` long on the timeline (see ``edit_spans``). On the way through, one
   K-weighting pass measures the edit's loudness (integrated, range, and the true peak of its loudest
   stretches, as ebur128 would) and each shot's loudness, and the samples either side of every cut are
   kept, for the continuity checks (``farm.edit.audio_lay``); no second pass reads the audio;
4. pick one gain for the loudness target (a limiter when the true peak needs it) and encode the
   gain-adjusted WAV to AAC in parallel pieces cut on AAC frames, each encoder given a second of
   pre-roll, their packets joined without decoding into one gapless, sample-exact stream
   (``farm.edit.audio_encode``); each encoding thread decodes the piece it encoded and meters it while
   the others still encode, which gives the delivered audio's loudness (``loudness_after``);
5. mux: the joined video and audio streams, both copied, into the edit's mp4;
6. verify the written file from its headers and packets (frame count, audio length, start times) and
   publish it by rename.

The ffmpeg command lines themselves are built, and run, by ``farm.media.ffmpeg``.

Nothing here holds more than one chunk of audio or any decoded frame: memory is flat in the number of
shots. Work files live in a hidden folder beside the output and are removed however the call ends.

AAC priming: the AAC encoder emits 1024 priming samples before the first real one; the joined stream
keeps the first piece's priming packet at pts -1024 and the mp4 muxer writes an edit list that skips
it, so decoded audio starts at t = 0 with the first dialogue sample. The edit list also ends the audio
on the timeline's last sample (the movie timescale is the sample rate), although the last AAC frame is
padded to 1024 samples; verification allows one sample of rounding.
"""

from __future__ import annotations

import enum
import os
import shutil
import time
from collections.abc import Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path

import numpy as np

from farm import defaults, files
from farm.edit.audio_encode import encode_edit_audio, piece_count
from farm.edit.audio_lay import ShotAudioStats, lay_audio
from farm.edit.loudness import LoudnessMeasurement, Normalisation, normalisation_gain
from farm.edit.timeline import EditShot, EditSpan, check_edit_order, edit_spans, source_start_sample
from farm.errors import MediaError, UsageError
from farm.media.ffmpeg import (
    DEFAULT_ENCODE,
    DUPLICATE_MONO_TO_STEREO,
    EDIT_AUDIO_RATE,
    EncodeSettings,
    Filter,
    concat_copied_video,
    mux_copied_streams,
    reencode_video,
    run,
)
from farm.media.video import (
    ShotVideoWriter,
    StreamSignature,
    probe_signature,
    probe_stream,
    probe_video,
    stream_start_times,
    write_concat_list,
)
from farm.shotlist.types import OutputSpec

EDIT_FILE = "edit.mp4"
EDIT_AAC_CODER = "fast"
"""ffmpeg's AAC coder for the edit's audio: 'fast' encodes an hour of dialogue ~3x quicker than the
default 'twoloop' (measured 85x vs 31x real time on one core), with no audible difference for speech
at 192 kb/s; encoding the audio is otherwise the slowest step of a stream-copied assembly."""


class VideoRoute(enum.StrEnum):
    COPY = "copy"
    REENCODE = "reencode"


@dataclass(frozen=True)
class AssembledShot:
    shot_id: str
    span: EditSpan
    route: VideoRoute
    reasons: tuple[str, ...]
    """Why it was re-encoded (empty when copied)."""
    format_differences: tuple[str, ...]
    """The stream parameters (size, rate, codec...) in which the shot's file differs from the edit's."""
    file_frames: int
    """Frames in the shot's own file (the edit always has exactly the planned frames)."""
    signature: StreamSignature
    source_start_sample: int
    """First sample of the slice in its track at 48 kHz."""
    audio: ShotAudioStats


@dataclass(frozen=True)
class AssemblyResult:
    path: Path
    frames: int
    fps: Fraction
    width: int
    height: int
    audio_samples: int
    audio_sample_rate: int
    audio_duration_in_file: float
    shots: tuple[AssembledShot, ...]
    loudness_before: LoudnessMeasurement
    loudness_after: LoudnessMeasurement
    normalisation: Normalisation
    target_lufs: float
    true_peak_db: float
    seconds: float
    bytes: int
    phases: dict[str, float] = field(default_factory=dict)
    """Wall seconds per step (lay_audio, wait_probe, encode_audio, wait_video, mux, verify); the shots are
    probed, routed and their video joined in the background from the start."""

    @property
    def duration(self) -> Fraction:
        return Fraction(self.frames) / self.fps

    @property
    def copied(self) -> int:
        return sum(1 for shot in self.shots if shot.route == VideoRoute.COPY)

    @property
    def reencoded(self) -> int:
        return len(self.shots) - self.copied

    def shot(self, shot_id: str) -> AssembledShot:
        for shot in self.shots:
            if shot.shot_id == shot_id:
                return shot
        raise KeyError(shot_id)

    def to_json(self) -> dict[str, object]:
        return {
            "path": str(self.path),
            "frames": self.frames,
            "fps": str(self.fps),
            "width": self.width,
            "height": self.height,
            "duration_seconds": float(self.duration),
            "audio_samples": self.audio_samples,
            "audio_sample_rate": self.audio_sample_rate,
            "audio_duration_in_file": self.audio_duration_in_file,
            "stream_copied_shots": self.copied,
            "reencoded_shots": self.reencoded,
            "loudness": {
                "target_lufs": self.target_lufs,
                "true_peak_ceiling_dbtp": self.true_peak_db,
                "before": _loudness_json(self.loudness_before),
                "after": _loudness_json(self.loudness_after),
                "gain_db": round(self.normalisation.gain_db, 2),
                "peak_limited": self.normalisation.peak_limited,
            },
            "seconds": round(self.seconds, 3),
            "phases": self.phases,
            "bytes": self.bytes,
            "shots": [
                {
                    "shot": shot.shot_id,
                    "route": shot.route.value,
                    "reasons": list(shot.reasons),
                    "first_frame": shot.span.first_frame,
                    "frames": shot.span.end_frame - shot.span.first_frame,
                    "file_frames": shot.file_frames,
                    "first_sample": shot.span.first_sample,
                    "samples": shot.span.samples,
                    "loudness_lufs": _rounded(shot.audio.loudness_lufs),
                }
                for shot in self.shots
            ],
        }


def _loudness_json(measured: LoudnessMeasurement) -> dict[str, float | None]:
    return {
        "integrated_lufs": _rounded(measured.integrated_lufs),
        "true_peak_dbtp": _rounded(measured.true_peak_dbtp),
        "loudness_range_lu": _rounded(measured.loudness_range_lu),
    }


def _rounded(value: float | None) -> float | None:
    return None if value is None else round(value, 2)


def assemble_edit(
    shots: Sequence[EditShot],
    out_dir: Path,
    *,
    output: OutputSpec,
    loudness_lufs: float = defaults.LOUDNESS_LUFS,
    true_peak_db: float = defaults.TRUE_PEAK_DB,
    settings: EncodeSettings = DEFAULT_ENCODE,
    reencode_all: bool = False,
    workers: int | None = None,
    audio_pieces: int | None = None,
) -> AssemblyResult:
    """Write ``out_dir/edit.mp4`` from ``shots`` (in edit order); never overwrites an existing edit.

    ``reencode_all`` re-encodes every shot even where a stream copy would do (benchmarks, or to
    normalise a set of shots from foreign encoders). ``audio_pieces`` fixes how many parallel AAC encodes
    the dialogue is cut into (default: one per worker, none under 30 s; 1 is a single pass).
    """
    started = time.perf_counter()
    check_edit_order(shots)
    if shots[0].fps != output.fps:
        raise UsageError(f"the shots are planned at {shots[0].fps} fps but the output is {output.fps} fps")
    out_dir.mkdir(parents=True, exist_ok=True)
    target = out_dir / EDIT_FILE
    if target.exists():
        raise UsageError(f"{target} exists; every assembly is a new edit version, write it to a new folder")
    work = files.temporary_dir(out_dir, prefix=".assemble.")
    clock = _PhaseClock()
    try:
        spans = edit_spans(shots)
        audio_wav = work / "edit_audio.wav"
        edit_audio = work / "edit_audio.m4a"
        parallel = workers or os.cpu_count() or 1
        with ThreadPoolExecutor(max_workers=1) as background:
            # the shots are probed and routed, the odd ones re-encoded and the video joined (ffmpeg
            # processes) while the audio is laid, measured and encoded here
            routed = background.submit(_probe_and_route, shots, work, output, settings, reencode_all)
            video = background.submit(_join_video, shots, routed, work, output, settings, parallel)
            laid = lay_audio(shots, spans, audio_wav, work, workers=workers)
            audio_stats, before = laid.shots, laid.loudness
            clock.lap("lay_audio")
            routes = routed.result()  # a shot that cannot be read stops the assembly before the encode
            clock.lap("wait_probe")
            gain = normalisation_gain(before, loudness_lufs, true_peak_db)
            encoded = encode_edit_audio(
                audio_wav,
                edit_audio,
                work,
                filters=[DUPLICATE_MONO_TO_STEREO, *gain.audio_filters()],
                settings=settings,
                aac_coder=EDIT_AAC_CODER,
                pieces=audio_pieces or piece_count(spans[-1].end_sample, parallel),
                workers=parallel,
            )
            after = encoded.loudness
            clock.lap("encode_audio")
            joined_video = video.result()
            clock.lap("wait_video")
        staged = work / EDIT_FILE
        frames = sum(shot.frames for shot in shots)
        audio_samples = spans[-1].end_sample
        run(mux_copied_streams(joined_video, edit_audio, staged), "muxing the edit")
        clock.lap("mux")
        info = _verify(staged, frames, audio_samples, output)
        clock.lap("verify")
        files.publish(staged, target)  # ffmpeg created it under the umask, like every file farm writes
    finally:
        shutil.rmtree(work, ignore_errors=True)
    assembled = tuple(
        AssembledShot(
            shot_id=shot.shot_id,
            span=span,
            route=route.route,
            reasons=route.reasons,
            format_differences=route.format_differences,
            file_frames=route.file_frames,
            signature=route.signature,
            source_start_sample=source_start_sample(shot.audio),
            audio=stats,
        )
        for shot, span, route, stats in zip(shots, spans, routes, audio_stats, strict=True)
    )
    return AssemblyResult(
        path=target,
        frames=frames,
        fps=output.fps,
        width=output.width,
        height=output.height,
        audio_samples=audio_samples,
        audio_sample_rate=EDIT_AUDIO_RATE,
        audio_duration_in_file=info,
        shots=assembled,
        loudness_before=before,
        loudness_after=after,
        normalisation=gain,
        target_lufs=loudness_lufs,
        true_peak_db=true_peak_db,
        seconds=time.perf_counter() - started,
        phases=clock.phases,
        bytes=target.stat().st_size,
    )


class _PhaseClock:
    def __init__(self) -> None:
        self.phases: dict[str, float] = {}
        self._last = time.perf_counter()

    def lap(self, name: str) -> None:
        now = time.perf_counter()
        self.phases[name] = round(now - self._last, 3)
        self._last = now


# -- 1-2. probe and route -------------------------------------------------------------------------


@dataclass(frozen=True)
class _Route:
    route: VideoRoute
    reasons: tuple[str, ...]
    format_differences: tuple[str, ...]
    file_frames: int
    signature: StreamSignature


def _reference_signature(work: Path, output: OutputSpec, settings: EncodeSettings) -> StreamSignature:
    """The signature farm's own encoder gives a shot at the output size and rate (SPS/PPS included).

    Encoding two black frames costs milliseconds and answers exactly, where predicting x264's
    parameter sets from its settings would be guesswork.
    """
    probe = work / "reference.mp4"
    blank = np.zeros((2, output.height, output.width, 3), np.uint8)
    with ShotVideoWriter(
        probe, width=output.width, height=output.height, fps=output.fps, frames=2, settings=settings
    ) as w:
        w.write(blank)
    return probe_signature(probe)


def _route_shots(shots: Sequence[EditShot], reference: StreamSignature, reencode_all: bool) -> list[_Route]:
    routes = []
    for shot in shots:
        if not shot.video.is_file():
            raise MediaError(f"shot {shot.shot_id}: video {shot.video} does not exist")
        signature, file_frames = probe_stream(shot.video)
        differences = tuple(signature.differences(reference))
        reasons = list(differences)
        if file_frames != shot.frames:
            reasons.append(f"frames: {file_frames} in the file vs {shot.frames} planned")
        if reencode_all and not reasons:
            reasons.append("re-encode requested")
        route = VideoRoute.REENCODE if reasons else VideoRoute.COPY
        routes.append(_Route(route, tuple(reasons), differences, file_frames, signature))
    return routes


def _probe_and_route(
    shots: Sequence[EditShot], work: Path, output: OutputSpec, settings: EncodeSettings, reencode_all: bool
) -> list[_Route]:
    return _route_shots(shots, _reference_signature(work, output, settings), reencode_all)


def _join_video(
    shots: Sequence[EditShot],
    routed: Future[list[_Route]],
    work: Path,
    output: OutputSpec,
    settings: EncodeSettings,
    workers: int,
) -> Path:
    """The edit's video alone in ``work``: the odd shots conformed, then every shot joined by stream copy."""
    videos = _conform_videos(shots, routed.result(), work, output, settings, workers)
    concat = work / "video.ffconcat"
    write_concat_list(concat, [(video, shot.duration) for video, shot in zip(videos, shots, strict=True)])
    joined = work / "edit_video.mp4"
    run(concat_copied_video(concat, joined), "joining the shots' video")
    return joined


def _conform_videos(
    shots: Sequence[EditShot],
    routes: Sequence[_Route],
    work: Path,
    output: OutputSpec,
    settings: EncodeSettings,
    workers: int,
) -> list[Path]:
    """The file each shot contributes: its own (copy) or a conformed re-encode in ``work``."""
    jobs = {
        index: work / f"conformed_{index:06d}.mp4"
        for index, route in enumerate(routes)
        if route.route == VideoRoute.REENCODE
    }
    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        futures = [
            pool.submit(_reencode_shot, shots[index], routes[index].file_frames, path, output, settings)
            for index, path in jobs.items()
        ]
        for future in futures:
            future.result()
    return [jobs.get(index, shot.video) for index, shot in enumerate(shots)]


def _reencode_shot(
    shot: EditShot, file_frames: int, destination: Path, output: OutputSpec, settings: EncodeSettings
) -> None:
    """Re-encode one shot's video to the common parameters with exactly ``shot.frames`` frames.

    Frames are retimed to the output rate (a shot rendered at the wrong rate keeps its frames, which
    match its audio), letterboxed to the output size, cut or padded (last frame held) to the plan.
    """
    rate = f"{output.fps.numerator}/{output.fps.denominator}"
    width, height = output.width, output.height
    conform = [
        Filter.of("setpts", f"N/({rate})/TB"),
        Filter.of("scale", width, height, force_original_aspect_ratio="decrease"),
        Filter.of("pad", width, height, "(ow-iw)/2", "(oh-ih)/2"),
        Filter.of("setsar", 1),
    ]
    if file_frames < shot.frames:
        conform.append(Filter.of("tpad", stop_mode="clone", stop=shot.frames - file_frames))
    command = reencode_video(
        shot.video, destination, filters=conform, fps=output.fps, frames=shot.frames, settings=settings
    )
    run(command, f"shot {shot.shot_id}: re-encoding {shot.video.name}")


# -- 5-6. mux and verify ----------------------------------------------------------------------------


def _verify(path: Path, frames: int, audio_samples: int, output: OutputSpec) -> float:
    """Refuse to publish an edit whose frame count or audio length is not what the timeline says."""
    info = probe_video(path)
    if info.frames != frames:
        raise MediaError(f"{path.name}: {info.frames} frames written, the timeline has {frames}")
    if (info.width, info.height) != (output.width, output.height):
        raise MediaError(f"{path.name}: {info.width}x{info.height}, expected {output.width}x{output.height}")
    video_start, audio_start = stream_start_times(path)
    if abs(video_start) > 0.5 / float(output.fps) or abs(audio_start or 0.0) > 0.5 / EDIT_AUDIO_RATE:
        raise MediaError(f"{path.name}: video starts at {video_start} s and audio at {audio_start} s, not together")
    expected = audio_samples / EDIT_AUDIO_RATE
    if info.audio_duration is None or abs(info.audio_duration - expected) > 1.5 / EDIT_AUDIO_RATE:
        raise MediaError(f"{path.name}: audio lasts {info.audio_duration} s, the timeline {expected:.6f} s")
    return info.audio_duration
