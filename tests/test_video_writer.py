"""Shot video files: exact frame counts, audio muxed, atomic publication, nothing left on failure."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest

from farm.errors import MediaError
from farm.media.video import ShotVideoWriter, probe_video, read_frames


def gradient_frames(count: int, height: int = 64, width: int = 96) -> np.ndarray:
    frames = np.zeros((count, height, width, 3), np.uint8)
    for index in range(count):
        frames[index, ..., 0] = (index * 9) % 256
        frames[index, ..., 1] = np.linspace(0, 255, width, dtype=np.uint8)[None, :]
    return frames


def test_writes_exact_frames_with_audio(tmp_path: Path) -> None:
    out = tmp_path / "shot.mp4"
    audio = (0.2 * np.sin(np.linspace(0, 2000, 16_000 * 2))).astype(np.float32)
    with ShotVideoWriter(out, width=96, height=64, fps=Fraction(25), frames=50, audio=audio) as writer:
        writer.write(gradient_frames(20))
        writer.write(gradient_frames(30))
    info = probe_video(out)

    assert (info.width, info.height, info.fps, info.frames) == (96, 64, 25, 50)
    assert (info.video_codec, info.pixel_format, info.audio_codec) == ("h264", "yuv420p", "aac")
    assert info.audio_sample_rate == 48_000 and info.audio_channels == 2
    assert info.audio_duration == pytest.approx(2.0, abs=0.05)
    decoded = list(read_frames(out))
    assert len(decoded) == 50 and decoded[0].flags.c_contiguous
    assert abs(int(decoded[10][0, 0, 0]) - 90) < 8  # red channel encodes the frame index
    assert [p.name for p in tmp_path.iterdir()] == ["shot.mp4"]


def test_failure_inside_the_block_leaves_nothing(tmp_path: Path) -> None:
    out = tmp_path / "shot.mp4"
    with pytest.raises(RuntimeError), ShotVideoWriter(out, width=96, height=64, fps=Fraction(25), frames=10) as w:
        w.write(gradient_frames(5))
        raise RuntimeError("model crashed mid-shot")

    assert list(tmp_path.iterdir()) == []


def test_too_few_frames_is_an_error_and_publishes_nothing(tmp_path: Path) -> None:
    out = tmp_path / "shot.mp4"
    with pytest.raises(MediaError, match="4 frames written, 10 expected"):
        with ShotVideoWriter(out, width=96, height=64, fps=Fraction(25), frames=10) as writer:
            writer.write(gradient_frames(4))

    assert list(tmp_path.iterdir()) == []


def test_wrong_frame_shape_is_refused(tmp_path: Path) -> None:
    with pytest.raises(MediaError, match="expected"):
        with ShotVideoWriter(tmp_path / "s.mp4", width=96, height=64, fps=Fraction(25), frames=2) as writer:
            writer.write(np.zeros((2, 10, 10, 3), np.uint8))
