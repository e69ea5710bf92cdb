"""Read a WAV file's layout from its RIFF header, so a track already in the model's format is never decoded whole.

A dialogue track of an episode is hours of audio (10,000 s at 16 kHz is 320 MB of samples). When the
file is plain 16-bit PCM, mono, at the rate the model hears, what ffmpeg would decode it to *is* the
bytes of its data chunk: its length is the chunk's size and any slice is one seek and one read, sample
for sample what decoding the whole track and cutting it gives. Anything else (another rate, stereo,
float, a compressed codec, a header that does not add up) is left to ffmpeg: this module answers None.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from pathlib import Path

_PCM = 1
_EXTENSIBLE = 0xFFFE
_STREAMING_SIZES = (0, 0xFFFFFFFF)
"""Data sizes a recorder writes before it knows the length; ffmpeg then reads to the end of the file."""


@dataclass(frozen=True)
class PcmLayout:
    """Where a WAV file's mono 16-bit samples are: ``samples`` of them from byte ``offset``."""

    offset: int
    samples: int
    sample_rate: int


def native_pcm_layout(path: Path, sample_rate: int) -> PcmLayout | None:
    """The layout of ``path`` when it is a complete mono 16-bit PCM WAV at ``sample_rate``; else None."""
    try:
        with path.open("rb") as file:
            file_size = path.stat().st_size
            riff = file.read(12)
            if len(riff) < 12 or riff[:4] != b"RIFF" or riff[8:12] != b"WAVE":
                return None
            fmt: tuple[int, int, int, int] | None = None
            position = 12
            while position + 8 <= file_size:
                file.seek(position)
                chunk_id, size = struct.unpack("<4sI", file.read(8))
                body = position + 8
                if chunk_id == b"fmt ":
                    fmt = _format(file.read(min(size, 40)))
                elif chunk_id == b"data":
                    return _layout(fmt, body, size, file_size, sample_rate)
                position = body + size + (size & 1)  # chunks are padded to an even size
    except OSError:
        return None
    return None


def _format(body: bytes) -> tuple[int, int, int, int] | None:
    """(format tag, channels, rate, bits per sample) of a ``fmt `` chunk, the subformat's for EXTENSIBLE."""
    if len(body) < 16:
        return None
    tag, channels, rate, _, _, bits = struct.unpack("<HHIIHH", body[:16])
    if tag == _EXTENSIBLE:
        if len(body) < 26:
            return None
        tag = struct.unpack("<H", body[24:26])[0]  # the first two bytes of the subformat GUID
    return tag, channels, rate, bits


def _layout(
    fmt: tuple[int, int, int, int] | None, offset: int, size: int, file_size: int, sample_rate: int
) -> PcmLayout | None:
    if fmt != (_PCM, 1, sample_rate, 16) or size in _STREAMING_SIZES or size % 2 or offset + size > file_size:
        return None
    return PcmLayout(offset, size // 2, sample_rate)
