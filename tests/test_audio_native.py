"""A track already in the model's format is read from its header and data chunk, sample for sample what
ffmpeg decodes; any other file is decoded as before (issue 18, part 5c)."""

from __future__ import annotations

import struct
import subprocess
import wave
from pathlib import Path

import numpy as np
import pytest

from farm.media.audio import MODEL_SAMPLE_RATE, SampleRange, cut_audio, decode_audio, track_samples
from farm.media.ffmpeg import ffmpeg_executable
from farm.media.wav_header import native_pcm_layout

RATE = MODEL_SAMPLE_RATE


def _speech(samples: int, channels: int = 1, seed: int = 5) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return rng.integers(-20000, 20000, size=(samples, channels), dtype=np.int16)


def _wav(path: Path, samples: np.ndarray, rate: int = RATE) -> Path:
    with wave.open(str(path), "wb") as out:
        out.setnchannels(samples.shape[1])
        out.setsampwidth(2)
        out.setframerate(rate)
        out.writeframes(samples.astype("<i2").tobytes())
    return path


def _riff(path: Path, chunks: list[tuple[bytes, bytes]], *, data_size: int | None = None) -> Path:
    """A WAV built chunk by chunk (odd chunks padded), so headers wave.py never writes can be tested."""
    body = b"WAVE"
    for chunk_id, payload in chunks:
        size = data_size if chunk_id == b"data" and data_size is not None else len(payload)
        body += chunk_id + struct.pack("<I", size) + payload + (b"\0" if len(payload) % 2 else b"")
    path.write_bytes(b"RIFF" + struct.pack("<I", len(body)) + body)
    return path


def _fmt(channels: int = 1, rate: int = RATE, *, extensible: bool = False) -> bytes:
    block = 2 * channels
    if not extensible:
        return struct.pack("<HHIIHH", 1, channels, rate, rate * block, block, 16)
    guid_tail = b"\x00\x00\x00\x00\x10\x00\x80\x00\x00\xaa\x00\x38\x9b\x71"
    return struct.pack("<HHIIHHHHI", 0xFFFE, channels, rate, rate * block, block, 16, 22, 16, 4) + (
        struct.pack("<H", 1) + guid_tail
    )


def _assert_cuts_match_the_decode(path: Path) -> None:
    decoded = decode_audio(path)
    assert track_samples(path) == len(decoded)
    for start, end in ((0, 1), (0, 16000), (7919, 23456), (len(decoded) - 300, len(decoded) + 500)):
        cut = cut_audio(path, SampleRange(start, end))
        expected = decoded[start:end]
        expected = np.concatenate([expected, np.zeros(end - start - len(expected), dtype=np.int16)])
        assert cut.dtype == np.int16
        np.testing.assert_array_equal(cut, expected)


def test_a_native_wav_is_read_from_its_header_and_cut_exactly_as_ffmpeg_decodes_it(tmp_path: Path) -> None:
    path = _wav(tmp_path / "native.wav", _speech(3 * RATE + 17))
    layout = native_pcm_layout(path, RATE)
    assert layout is not None and layout.samples == 3 * RATE + 17
    _assert_cuts_match_the_decode(path)


def test_chunks_before_the_data_and_an_extensible_header_are_still_native(tmp_path: Path) -> None:
    samples = _speech(2 * RATE + 3).astype("<i2").tobytes()
    listed = _riff(
        tmp_path / "list.wav", [(b"fmt ", _fmt()), (b"LIST", b"INFOISFT\x05\x00\x00\x00farm\x00"), (b"data", samples)]
    )
    extensible = _riff(tmp_path / "ext.wav", [(b"fmt ", _fmt(extensible=True)), (b"data", samples)])
    for path in (listed, extensible):
        assert native_pcm_layout(path, RATE) is not None, path.name
        _assert_cuts_match_the_decode(path)


@pytest.mark.parametrize("kind", ["stereo", "44.1 kHz", "truncated", "streamed", "not a wav"])
def test_anything_else_is_decoded_by_ffmpeg_as_before(tmp_path: Path, kind: str) -> None:
    mono = _speech(2 * RATE + 11).astype("<i2").tobytes()
    if kind == "stereo":
        path = _wav(tmp_path / "a.wav", _speech(2 * RATE, channels=2))
    elif kind == "44.1 kHz":
        path = _wav(tmp_path / "a.wav", _speech(44100 * 2), rate=44100)
    elif kind == "truncated":  # the header promises more samples than the file holds
        path = _riff(tmp_path / "a.wav", [(b"fmt ", _fmt()), (b"data", mono)], data_size=len(mono) + 4000)
    elif kind == "streamed":  # a recorder that never went back to write the size
        path = _riff(tmp_path / "a.wav", [(b"fmt ", _fmt()), (b"data", mono)], data_size=0xFFFFFFFF)
    else:
        path = tmp_path / "a.flac"
        wav = _wav(tmp_path / "src.wav", _speech(RATE))
        subprocess.run([ffmpeg_executable(), "-v", "error", "-i", str(wav), str(path)], check=True)
    assert native_pcm_layout(path, RATE) is None
    _assert_cuts_match_the_decode(path)


def test_a_track_rewritten_in_place_is_read_anew(tmp_path: Path) -> None:
    path = _wav(tmp_path / "t.wav", _speech(RATE, seed=1))
    first = cut_audio(path, SampleRange(0, 100)).copy()
    _wav(path, _speech(2 * RATE, seed=2))
    assert track_samples(path) == 2 * RATE
    assert not np.array_equal(cut_audio(path, SampleRange(0, 100)), first)
