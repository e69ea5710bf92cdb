"""Every ffmpeg process farm starts: where the binary comes from, how its command lines are built, how it runs.

The binary is imageio-ffmpeg's static build (libx264 and AAC inside the wheel, so a fresh machine needs no
system package); ``FARM_FFMPEG`` points at another build (a studio's own, with NVENC say).

Command lines and filter graphs are built with ffmpeg-python, here and nowhere else: one builder per job
farm asks of ffmpeg (encode a shot from piped frames, conform a shot, decode dialogue, encode the edit's
dialogue from piped samples, join the video, mux the edit, measure loudness). Callers say what the filters
are with ``Filter``; ffmpeg-python labels the graph and quotes the options. A finished command runs with
``run``; an encoder that reads a pipe (the shot writer's, fed frames while the model produces them, and
the edit's audio encoders, fed samples) is started with ``start``. Either way a failure is a
MediaError naming what farm was doing and ffmpeg's last line of stderr.
"""

from __future__ import annotations

import contextlib
import shutil
import subprocess
import threading
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from fractions import Fraction
from functools import cache
from pathlib import Path
from typing import Any

import ffmpeg

from farm import defaults
from farm.errors import MediaError
from farm.settings import ffmpeg_override

EDIT_AUDIO_RATE = defaults.EDIT_AUDIO_RATE
"""Sample rate of the AAC audio in every shot and edit file (broadcast standard)."""

_STDERR_LINES_KEPT = 20
_OPTION_SYNTAX = set("\\'=:")


@cache
def ffmpeg_executable() -> str:
    """``FARM_FFMPEG`` (a path, or a name looked up on PATH) if set, else imageio-ffmpeg's bundled build."""
    configured = ffmpeg_override()
    if configured:
        return shutil.which(configured) or configured
    import imageio_ffmpeg

    return imageio_ffmpeg.get_ffmpeg_exe()


@dataclass(frozen=True)
class Filter:
    """One ffmpeg filter: positional arguments, then named options (``scale=160:96:force_original_...``).

    Named options are quoted by ffmpeg-python. Its positional arguments are escaped twice (ffmpeg-python
    0.2.0), which breaks any containing ``=``, ``:``, ``'`` or ``\\``, so those are refused here: pass
    such a value as a named option (``pan``'s is called ``args``).
    """

    name: str
    arguments: tuple[str, ...] = ()
    options: tuple[tuple[str, str], ...] = ()

    @classmethod
    def of(cls, name: str, *arguments: object, **options: object) -> Filter:
        return cls(name, tuple(str(value) for value in arguments), tuple((k, str(v)) for k, v in options.items()))

    def __post_init__(self) -> None:
        for argument in self.arguments:
            if _OPTION_SYNTAX & set(argument):
                raise ValueError(f"{self.name}: pass {argument!r} as a named option, not a positional argument")


DUPLICATE_MONO_TO_STEREO = Filter.of("pan", args="stereo|c0=c0|c1=c0")
"""Mono dialogue on both channels at full level (``-ac 2`` would mix it down 3 dB on each)."""


BT709_TAGS = {"colorspace": "bt709", "color_primaries": "bt709", "color_trc": "bt709", "color_range": "tv"}
"""The container's colour tags of every shot and edit: BT.709 primaries, transfer and matrix, limited range."""

BT709_BITSTREAM = (
    "h264_metadata=colour_primaries=1:transfer_characteristics=1:matrix_coefficients=1:video_full_range_flag=0"
)
"""The same tags written into the H.264 stream itself (its SPS), for a stream-copied edit: a decoder reads
these, and a shot rendered before farm tagged its primaries and transfer carries "unknown" there."""


@dataclass(frozen=True)
class EncodeSettings:
    """x264 and AAC settings shared by every shot so that shots concatenate without re-encoding."""

    crf: int = 18
    preset: str = "veryfast"
    audio_bitrate: str = "192k"
    threads: int = 0
    """x264's threads (0: its own choice, about 1.5 per core). How many cores the encoder may take from the
    process feeding the GPU; it does not change what is encoded's format, so shots still concatenate."""

    def colour_conversion(self) -> tuple[Filter, ...]:
        """RGB to BT.709 limited-range YUV, and the frames tagged BT.709 in all four properties: the last
        filters before the encoder. ffmpeg 7+ takes the encoder's colour tags from the frames, on which
        ``scale`` sets only the matrix and range, so without ``setparams`` the primaries and transfer of
        every shot would read "unknown" however the output options below are set."""
        return (
            Filter.of("scale", out_color_matrix="bt709", out_range="tv"),
            Filter.of("setparams", color_primaries="bt709", color_trc="bt709", colorspace="bt709", range="tv"),
        )

    def video_options(self) -> dict[str, str]:
        threads = {"threads": str(self.threads)} if self.threads else {}
        return {
            "c:v": "libx264", "preset": self.preset, "crf": str(self.crf), "pix_fmt": "yuv420p", **threads,
            **BT709_TAGS,
        }  # fmt: skip

    def audio_options(self) -> dict[str, str]:
        return {"c:a": "aac", "b:a": self.audio_bitrate, "ar": str(EDIT_AUDIO_RATE), "ac": "2"}


DEFAULT_ENCODE = EncodeSettings()


@dataclass(frozen=True)
class FfmpegCommand:
    """A complete ffmpeg command line, built by one of the functions below."""

    argv: tuple[str, ...]
    writes_stdout: bool = False
    """The output is ``pipe:``: ``run`` captures it."""
    reads_stdin: bool = False
    """The input is ``pipe:0``: only ``start`` can feed it."""


@dataclass(frozen=True)
class FfmpegOutput:
    stdout: bytes
    log: str
    """Everything ffmpeg wrote to stderr (at the command's log level)."""


# -- builders -----------------------------------------------------------------------------------------


def encode_rgb_frames(
    destination: Path, *, width: int, height: int, fps: Fraction, audio: Path | None, settings: EncodeSettings
) -> FfmpegCommand:
    """rgb24 frames on stdin (+ a WAV of the dialogue) -> an H.264/AAC mp4, moov first, at exactly ``fps``."""
    rate = _rate(fps)
    frames = ffmpeg.input("pipe:0", f="rawvideo", pix_fmt="rgb24", s=f"{width}x{height}", framerate=rate)
    streams = [_chain(frames["v:0"], settings.colour_conversion())]
    options = settings.video_options()
    if audio is not None:
        streams.append(ffmpeg.input(str(audio))["a:0"])
        options |= settings.audio_options()
    output = ffmpeg.output(*streams, str(destination), r=rate, movflags="+faststart", f="mp4", **options)
    return FfmpegCommand(_compile(output), reads_stdin=True)


def reencode_video(
    source: Path, destination: Path, *, filters: Sequence[Filter], fps: Fraction, frames: int, settings: EncodeSettings
) -> FfmpegCommand:
    """The first video stream of ``source`` through ``filters`` to farm's encoder: ``frames`` frames, no audio."""
    video = _chain(ffmpeg.input(str(source))["v:0"], [*filters, *settings.colour_conversion()])
    rate = _rate(fps)
    output = video.output(str(destination), r=rate, f="mp4", **{"frames:v": str(frames)}, **settings.video_options())
    return FfmpegCommand(_compile(output))


def decode_to_wav(source: Path, destination: Path, *, sample_rate: int) -> FfmpegCommand:
    """Any audio ffmpeg reads -> mono 16-bit WAV at ``sample_rate`` (streamed to disk, flat memory)."""
    output = ffmpeg.input(str(source)).output(
        str(destination), vn=None, ac=1, ar=sample_rate, f="wav", **{"c:a": "pcm_s16le"}
    )
    return FfmpegCommand(_compile(output))


def decode_to_pcm(source: Path, *, sample_rate: int) -> FfmpegCommand:
    """Any audio ffmpeg reads -> mono little-endian int16 samples at ``sample_rate`` on stdout."""
    output = ffmpeg.input(str(source)).output("pipe:", format="s16le", acodec="pcm_s16le", ac=1, ar=sample_rate)
    return FfmpegCommand(_compile(output), writes_stdout=True)


def encode_pcm_to_aac(
    destination: Path, *, sample_rate: int, filters: Sequence[Filter], settings: EncodeSettings, aac_coder: str
) -> FfmpegCommand:
    """Mono little-endian int16 samples on stdin, through ``filters``, to AAC in an audio-only mp4 (m4a)."""
    sound = _chain(ffmpeg.input("pipe:0", f="s16le", ar=sample_rate, ac=1)["a:0"], filters)
    output = sound.output(str(destination), f="mp4", **settings.audio_options(), aac_coder=aac_coder)
    return FfmpegCommand(_compile(output), reads_stdin=True)


def concat_copied_video(concat_list: Path, destination: Path) -> FfmpegCommand:
    """The shots' video joined by the concat demuxer without decoding (``-c:v copy``), no audio.

    ``-copyts`` matters: without it ffmpeg shifts the whole input by the earliest timestamp it sees,
    which for shots carrying their own AAC is the audio's -1024-sample priming, and the edit's video
    would start 21.3 ms late against its audio. The video is tagged BT.709 on the way through
    (``BT709_BITSTREAM``, ``BT709_TAGS``), so the edit is tagged even when its shots were not.
    """
    video = ffmpeg.input(str(concat_list), f="concat", safe=0)["v:0"]
    options = {"c:v": "copy", "bsf:v": BT709_BITSTREAM, **BT709_TAGS}
    return FfmpegCommand(_compile(video.output(str(destination), f="mp4", **options).global_args("-copyts")))


def mux_copied_streams(video: Path, audio: Path, destination: Path) -> FfmpegCommand:
    """One video and one encoded audio stream into the edit's mp4, both copied (nothing decoded).

    With ``-copyts`` the audio's priming packet keeps its pts of -1024 samples and the muxer writes the
    edit list that skips it, in a movie timescale of the audio's sample rate so that the list also ends
    the audio on its exact last sample (at the default of 1/1000 s it would end up to 47 samples off).
    """
    options = {"c": "copy", **BT709_TAGS, "movie_timescale": str(EDIT_AUDIO_RATE)}
    streams = [ffmpeg.input(str(video))["v:0"], ffmpeg.input(str(audio))["a:0"]]
    output = ffmpeg.output(*streams, str(destination), movflags="+faststart", f="mp4", **options)
    return FfmpegCommand(_compile(output.global_args("-copyts")))


def measure_ebur128(source: Path, *, filters: Sequence[Filter] = (), per_block: bool = False) -> FfmpegCommand:
    """The first audio stream through ``filters`` into ebur128 (true peak on); its summary is in the log, and
    with ``per_block`` a line per 100 ms block too (momentary and short-term loudness)."""
    meter = Filter.of("ebur128", peak="true", framelog="verbose" if per_block else "quiet")
    audio = _chain(ffmpeg.input(str(source))["a:0"], [*filters, meter])
    return FfmpegCommand(_compile(audio.output("-", f="null"), log_level="verbose" if per_block else "info"))


def last_frame_jpeg(source: Path, destination: Path, *, width: int) -> FfmpegCommand:
    """The last frame of ``source`` (read from its final second), scaled to ``width``, as a JPEG."""
    video = ffmpeg.input(str(source), sseof=-1).video.filter("scale", width, -2)
    output = ffmpeg.output(video, str(destination), update=1, **{"q:v": 4, "frames:v": 1})
    return FfmpegCommand(_compile(output))


def _chain(stream: Any, filters: Sequence[Filter]) -> Any:
    for step in filters:
        stream = stream.filter(step.name, *step.arguments, **dict(step.options))
    return stream


def _compile(output: Any, *, log_level: str = "error") -> tuple[str, ...]:
    quiet = output.global_args("-nostdin", "-hide_banner", "-nostats", "-loglevel", log_level)
    return tuple(quiet.compile(cmd=ffmpeg_executable(), overwrite_output=True))


def _rate(fps: Fraction) -> str:
    return f"{fps.numerator}/{fps.denominator}"


# -- running --------------------------------------------------------------------------------------------


def run(command: FfmpegCommand, doing: str) -> FfmpegOutput:
    """Run ``command`` to the end; ``doing`` ("x.mp3: decoding audio") begins the error message."""
    if command.reads_stdin:
        raise ValueError(f"{doing}: this command reads frames from a pipe; start() it")
    try:
        completed = subprocess.run(
            command.argv,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE if command.writes_stdout else subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            check=False,
        )
    except OSError as exc:
        raise _not_started(doing, command, exc) from exc
    log = completed.stderr.decode(errors="replace")
    if completed.returncode != 0:
        failure = subprocess.CalledProcessError(completed.returncode, command.argv, stderr=log)
        raise MediaError(f"{doing}: ffmpeg failed ({_last_line(log, completed.returncode)})") from failure
    return FfmpegOutput(completed.stdout or b"", log)


def start(command: FfmpegCommand, doing: str) -> FfmpegProcess:
    """Start ``command`` with a pipe to its stdin; feed it with ``write`` and end it with ``finish`` or ``kill``."""
    if not command.reads_stdin:
        raise ValueError(f"{doing}: this command reads no pipe; run() it")
    return FfmpegProcess(command, doing)


class FfmpegProcess:
    """A running ffmpeg reading our pipe. Its stderr is drained as it comes (the last lines are kept), so a
    chatty ffmpeg can never block on a full stderr pipe while we block writing frames to it."""

    def __init__(self, command: FfmpegCommand, doing: str) -> None:
        self.command = command
        self.doing = doing
        try:
            self._process = subprocess.Popen(
                command.argv, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
            )
        except OSError as exc:
            raise _not_started(doing, command, exc) from exc
        self._stderr: deque[str] = deque(maxlen=_STDERR_LINES_KEPT)
        self._drain = threading.Thread(target=self._read_stderr, name="ffmpeg-stderr", daemon=True)
        self._drain.start()

    def write(self, data: bytes) -> None:
        assert self._process.stdin is not None
        try:
            self._process.stdin.write(data)
        except BrokenPipeError as exc:
            code = self._wait()
            raise MediaError(f"{self.doing}: ffmpeg stopped ({self._last_line(code)})") from exc

    def finish(self) -> None:
        """Close the pipe and wait: MediaError unless ffmpeg exits cleanly."""
        assert self._process.stdin is not None
        with contextlib.suppress(BrokenPipeError):  # it already exited; its status and stderr say why
            self._process.stdin.close()
        code = self._wait()
        if code != 0:
            failure = subprocess.CalledProcessError(code, self.command.argv, stderr="\n".join(self._stderr))
            raise MediaError(f"{self.doing}: ffmpeg failed ({self._last_line(code)})") from failure

    def kill(self) -> None:
        """Stop it now (the caller is abandoning the output)."""
        self._process.kill()
        self._wait()
        if self._process.stdin is not None:
            with contextlib.suppress(BrokenPipeError):  # nobody reads it any more: nothing to flush
                self._process.stdin.close()

    def _wait(self) -> int:
        code = self._process.wait()
        self._drain.join()
        return code

    def _read_stderr(self) -> None:
        assert self._process.stderr is not None
        with self._process.stderr:
            for line in self._process.stderr:
                self._stderr.append(line.decode(errors="replace"))

    def _last_line(self, code: int) -> str:
        return _last_line("".join(self._stderr), code)


def _last_line(log: str, code: int) -> str:
    lines = log.strip().splitlines()
    return lines[-1].strip() if lines else f"exit status {code}"


def _not_started(doing: str, command: FfmpegCommand, exc: OSError) -> MediaError:
    return MediaError(f"{doing}: cannot run ffmpeg {command.argv[0]} ({exc.strerror or exc}); check FARM_FFMPEG")
