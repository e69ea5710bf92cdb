"""Shot video files: encode frames (+ the dialogue slice) with ffmpeg, atomically; probe and decode with PyAV.

A shot is written to a hidden temporary file beside its destination and renamed into place only once
ffmpeg has exited cleanly with exactly the frames promised, so no reader ever sees half a video and a
crash leaves nothing behind but a temp file that is removed on the way out.

Frames reach ffmpeg through a queue and a feeder thread (``ShotVideoWriter``): the renderer hands a batch
over and goes on while the pipe takes it, so a GPU waits for the encoder only when a bounded amount of
frames (``QUEUED_BYTES``) is already waiting, and a worker can start its next shot while ffmpeg finishes
encoding the last one.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from types import TracebackType

import numpy as np

from farm import defaults, files
from farm.errors import MediaError
from farm.media.audio import write_wav_chunks
from farm.media.ffmpeg import DEFAULT_ENCODE, EncodeSettings, FfmpegProcess, encode_rgb_frames, start
from farm.media.ffmpeg import EDIT_AUDIO_RATE as EDIT_AUDIO_RATE  # the shot files' rate; the edit reads it here

QUEUED_BYTES = 256 * 1024 * 1024
"""Frames a writer holds for its encoder at most (about 200 frames at 480x832): what a renderer may run
ahead of ffmpeg, and what it costs in memory."""


class ShotVideoWriter:
    """A FrameSink that pipes RGB frames into ffmpeg and publishes the mp4 atomically on success.

    Use as a context manager: leaving the block normally finishes and renames the file; leaving it with
    an exception kills ffmpeg and deletes the partial output. ``write`` queues a batch for the feeder
    thread, which writes it to ffmpeg's pipe; an encoder failure surfaces at the next ``write`` or at
    the end.
    """

    def __init__(
        self,
        path: Path,
        *,
        width: int,
        height: int,
        fps: Fraction,
        frames: int,
        audio: np.ndarray | None = None,
        audio_rate: int = defaults.MODEL_SAMPLE_RATE,
        settings: EncodeSettings = DEFAULT_ENCODE,
        audio_chunks: Iterable[np.ndarray] | None = None,
        keep_existing: bool = False,
    ) -> None:
        """``audio`` (the shot's samples) or ``audio_chunks`` (them in pieces, for a long take) is muxed in.
        ``keep_existing``: a file already at ``path`` is kept (``farm.files.publish_new``), as the artifact
        store needs."""
        self.path = path
        self.keep_existing = keep_existing
        self.width, self.height, self.fps = width, height, fps
        self.expected_frames = frames
        self.frames_written = 0
        self.settings = settings
        path.parent.mkdir(parents=True, exist_ok=True)
        self.temporary = files.temporary_path(path, suffix=".part.mp4")
        self.audio_file: Path | None = None
        self.process: FfmpegProcess | None = None
        self._queue: queue.Queue[bytes | None] | None = None
        self._feeder: threading.Thread | None = None
        self._feed_error: BaseException | None = None
        if audio is not None or audio_chunks is not None:
            self.audio_file = self.temporary.with_suffix(".wav")
            try:
                write_wav_chunks(self.audio_file, (audio,) if audio is not None else audio_chunks, audio_rate)
            except BaseException:  # a full disk, say: no __exit__ will run to remove the two temp files
                self._remove_temporaries()
                raise

    def __enter__(self) -> ShotVideoWriter:
        command = encode_rgb_frames(
            self.temporary,
            width=self.width,
            height=self.height,
            fps=self.fps,
            audio=self.audio_file,
            settings=self.settings,
        )
        self.process = start(command, f"{self.path}: encoding the shot")
        return self

    def _feed(self) -> None:
        """The feeder thread: the queued batches into ffmpeg's pipe, until the end marker (None)."""
        assert self._queue is not None and self.process is not None
        while (data := self._queue.get()) is not None:
            if self._feed_error is None:  # after a failure, drain so that no writer stays blocked
                try:
                    self.process.write(data)
                except BaseException as error:
                    self._feed_error = error

    def _queue_for(self, batch_bytes: int) -> queue.Queue[bytes | None]:
        if self._queue is None:
            self._queue = queue.Queue(maxsize=max(2, QUEUED_BYTES // max(batch_bytes, 1)))
            self._feeder = threading.Thread(target=self._feed, name=f"encode-{self.path.name}", daemon=True)
            self._feeder.start()
        return self._queue

    def _stop_feeder(self) -> None:
        if self._queue is not None and self._feeder is not None:
            self._queue.put(None)
            self._feeder.join()
            self._queue = self._feeder = None

    def write(self, frames: np.ndarray) -> None:
        if self.process is None:
            raise MediaError(f"{self.path}: writer is not open")
        if frames.ndim == 3:
            frames = frames[None]
        if frames.shape[1:] != (self.height, self.width, 3) or frames.dtype != np.uint8:
            raise MediaError(
                f"{self.path}: got frames of shape {frames.shape} {frames.dtype}, "
                f"expected (n, {self.height}, {self.width}, 3) uint8"
            )
        if self.frames_written + len(frames) > self.expected_frames:
            raise MediaError(f"{self.path}: more than the {self.expected_frames} frames promised")
        if self._feed_error is not None:
            raise self._feed_error
        data = np.ascontiguousarray(frames).tobytes()
        self._queue_for(len(data)).put(data)
        self.frames_written += len(frames)

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        try:
            if kind is None:
                self._finish()
            elif self.process is not None:
                self.process.kill()  # first: a feeder blocked on the pipe then fails and drains
                self._stop_feeder()
        finally:
            self._remove_temporaries()

    def _remove_temporaries(self) -> None:
        for leftover in (self.temporary, self.audio_file):
            if leftover is not None:
                leftover.unlink(missing_ok=True)

    def _finish(self) -> None:
        assert self.process is not None
        self._stop_feeder()
        if self._feed_error is not None:
            self.process.kill()
            raise self._feed_error
        self.process.finish()
        if self.frames_written != self.expected_frames:
            raise MediaError(f"{self.path}: {self.frames_written} frames written, {self.expected_frames} expected")
        if self.keep_existing:
            files.publish_new(self.temporary, self.path)
        else:
            files.publish(self.temporary, self.path)


@dataclass(frozen=True)
class VideoInfo:
    width: int
    height: int
    fps: Fraction
    frames: int
    duration: float
    video_codec: str
    pixel_format: str
    audio_codec: str | None
    audio_sample_rate: int | None
    audio_channels: int | None
    audio_duration: float | None


def probe_video(path: Path) -> VideoInfo:
    """Stream parameters and exact frame count (counted by demuxing packets, not estimated)."""
    import av

    try:
        with av.open(str(path)) as container:
            if not container.streams.video:
                raise MediaError(f"{path}: has no video stream")
            video = container.streams.video[0]
            audio = container.streams.audio[0] if container.streams.audio else None
            fps = Fraction(video.average_rate) if video.average_rate else Fraction(0)
            frames = sum(1 for packet in container.demux(video) if packet.size)
            audio_duration = (
                float(audio.duration * audio.time_base) if audio is not None and audio.duration is not None else None
            )
            return VideoInfo(
                width=video.codec_context.width,
                height=video.codec_context.height,
                fps=fps,
                frames=frames,
                duration=float(frames / fps) if fps else 0.0,
                video_codec=video.codec_context.name,
                pixel_format=video.codec_context.pix_fmt or "",
                audio_codec=audio.codec_context.name if audio is not None else None,
                audio_sample_rate=audio.codec_context.sample_rate if audio is not None else None,
                audio_channels=audio.codec_context.channels if audio is not None else None,
                audio_duration=audio_duration,
            )
    except av.FFmpegError as exc:
        raise MediaError(f"{path}: not a readable video ({exc})") from exc


def read_frames(path: Path) -> Iterator[np.ndarray]:
    """Every frame as a C-contiguous (H, W, 3) uint8 RGB array (dlib and friends need contiguity)."""
    import av

    try:
        with av.open(str(path)) as container:
            for frame in container.decode(video=0):
                yield np.ascontiguousarray(frame.to_ndarray(format="rgb24"))
    except av.FFmpegError as exc:
        raise MediaError(f"{path}: cannot decode video ({exc})") from exc


@dataclass(frozen=True)
class StreamSignature:
    """What two video streams must share for the concat demuxer to join them without re-encoding.

    The extradata (H.264 SPS/PPS) is part of it: an mp4 carries its parameter sets out of band, so a
    stream-copied edit keeps only the first shot's; a later shot encoded with different settings (a
    different CRF changes the PPS) would then decode with the wrong parameters.
    """

    codec: str
    profile: str
    width: int
    height: int
    pixel_format: str
    fps: Fraction
    time_base: Fraction
    extradata_sha256: str

    def differences(self, other: StreamSignature) -> list[str]:
        """Human-readable ``name: mine vs theirs`` for every field that differs."""
        return [
            "extradata: the encoder's parameter sets (SPS/PPS) differ"
            if name == "extradata_sha256"
            else f"{name}: {getattr(self, name)} vs {getattr(other, name)}"
            for name in self.__dataclass_fields__
            if getattr(self, name) != getattr(other, name)
        ]


def probe_signature(path: Path) -> StreamSignature:
    """The first video stream's StreamSignature (reads the header only)."""
    return probe_stream(path)[0]


def probe_stream(path: Path) -> tuple[StreamSignature, int]:
    """The StreamSignature and the frame count, from one open of the file.

    The count is the container's sample count when it has one (mp4: exact, from the header, no
    demuxing), else the packets are counted.
    """
    import hashlib

    import av

    try:
        with av.open(str(path)) as container:
            if not container.streams.video:
                raise MediaError(f"{path}: has no video stream")
            stream = container.streams.video[0]
            context = stream.codec_context
            frames = stream.frames or sum(1 for packet in container.demux(stream) if packet.size)
            signature = StreamSignature(
                codec=context.name,
                profile=str(context.profile or ""),
                width=context.width,
                height=context.height,
                pixel_format=context.pix_fmt or "",
                fps=Fraction(stream.average_rate) if stream.average_rate else Fraction(0),
                time_base=Fraction(stream.time_base) if stream.time_base else Fraction(0),
                extradata_sha256=hashlib.sha256(context.extradata or b"").hexdigest(),
            )
            return signature, frames
    except av.FFmpegError as exc:
        raise MediaError(f"{path}: not a readable video ({exc})") from exc


def write_concat_list(path: Path, entries: list[tuple[Path, Fraction]]) -> None:
    """An ffmpeg concat-demuxer script: each file with its exact duration.

    Giving the duration keeps the timeline on the video frames: without it the demuxer advances by the
    file's container duration, which an AAC track padded to 1024-sample frames can make longer.
    """
    lines = ["ffconcat version 1.0"]
    for file, duration in entries:
        quoted = str(file.resolve()).replace("'", "'\\''")
        lines.append(f"file '{quoted}'")
        lines.append(f"duration {_decimal_seconds(duration)}")
    path.write_text("\n".join(lines) + "\n")


def _decimal_seconds(value: Fraction) -> str:
    """Seconds to the microsecond (ffmpeg's time resolution), without float rounding on the way."""
    micro = round(value * 1_000_000)
    return f"{micro // 1_000_000}.{micro % 1_000_000:06d}"


def stream_start_times(path: Path) -> tuple[float, float | None]:
    """Presentation start (seconds) of the first video and first audio stream; audio None when absent.

    mp4 edit lists (B-frame delay, AAC priming) are applied, so 0.0 for both means they start together.
    """
    import av

    try:
        with av.open(str(path)) as container:
            video = container.streams.video[0]
            audio = container.streams.audio[0] if container.streams.audio else None
            video_start = float((video.start_time or 0) * video.time_base)
            audio_start = float((audio.start_time or 0) * audio.time_base) if audio is not None else None
            return video_start, audio_start
    except (av.FFmpegError, IndexError) as exc:
        raise MediaError(f"{path}: cannot read stream start times ({exc})") from exc
