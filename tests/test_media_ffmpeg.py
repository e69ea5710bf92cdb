"""The one ffmpeg driver: which binary, what a failure says, and dialogue in compressed formats."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest

from farm.errors import MediaError
from farm.media import ffmpeg
from farm.media.audio import decode_audio, write_wav
from farm.media.ffmpeg import EncodeSettings, Filter, decode_to_pcm, decode_to_wav, ffmpeg_executable, run
from farm.media.video import ShotVideoWriter
from tests.edit_shots import tone


@pytest.fixture
def fresh_executable(monkeypatch: pytest.MonkeyPatch) -> Iterator[pytest.MonkeyPatch]:
    """ffmpeg_executable() is cached per process; each test here sees its own FARM_FFMPEG."""
    ffmpeg_executable.cache_clear()
    yield monkeypatch
    monkeypatch.undo()
    ffmpeg_executable.cache_clear()


def test_the_bundled_ffmpeg_is_used_unless_farm_ffmpeg_names_another(fresh_executable: pytest.MonkeyPatch) -> None:
    import imageio_ffmpeg

    fresh_executable.delenv("FARM_FFMPEG", raising=False)
    assert ffmpeg_executable() == imageio_ffmpeg.get_ffmpeg_exe()

    ffmpeg_executable.cache_clear()
    fresh_executable.setenv("FARM_FFMPEG", "sh")
    assert ffmpeg_executable() == shutil.which("sh")


def test_a_missing_binary_is_a_media_error_that_points_at_farm_ffmpeg(
    tmp_path: Path, fresh_executable: pytest.MonkeyPatch
) -> None:
    fresh_executable.setenv("FARM_FFMPEG", str(tmp_path / "no-such-ffmpeg"))
    track = tmp_path / "line.wav"
    write_wav(track, tone(0.5), 16_000)

    with pytest.raises(MediaError, match=r"line\.wav: decoding audio: cannot run ffmpeg .*no-such-ffmpeg.*FARM_FFMPEG"):
        run(decode_to_pcm(track, sample_rate=16_000), f"{track}: decoding audio")


def test_a_failed_command_says_what_farm_was_doing_and_ffmpegs_last_line(tmp_path: Path) -> None:
    notes = tmp_path / "notes.mp3"
    notes.write_text("not audio at all\n")

    with pytest.raises(MediaError) as failure:
        decode_audio(notes)

    message = str(failure.value)
    assert message.startswith(f"{notes}: decoding audio: ffmpeg failed (")
    assert "Invalid data found when processing input" in message
    assert failure.value.__cause__ is not None  # the full command line and stderr, for a traceback


def test_an_encoder_that_refuses_its_settings_fails_the_shot_with_x264s_reason(tmp_path: Path) -> None:
    out = tmp_path / "shot.mp4"
    with pytest.raises(MediaError, match=r"shot\.mp4: encoding the shot: ffmpeg (failed|stopped) \(.+\)"):
        with ShotVideoWriter(
            out, width=64, height=48, fps=Fraction(25), frames=2, settings=EncodeSettings(preset="no-such-preset")
        ) as writer:
            writer.write(np.zeros((2, 48, 64, 3), np.uint8))

    assert list(tmp_path.iterdir()) == []


def test_filter_arguments_in_option_syntax_must_be_named() -> None:
    """ffmpeg-python escapes positional filter arguments twice; a named option is quoted correctly."""
    with pytest.raises(ValueError, match="named option"):
        Filter.of("pan", "stereo|c0=c0|c1=c0")
    assert ffmpeg.DUPLICATE_MONO_TO_STEREO.options == (("args", "stereo|c0=c0|c1=c0"),)


@pytest.mark.parametrize(("suffix", "codec"), [(".m4a", "aac"), (".mp3", "libmp3lame")])
def test_compressed_dialogue_decodes_to_its_length_and_its_waveform(tmp_path: Path, suffix: str, codec: str) -> None:
    """Dialogue delivered as MP3 or AAC decodes through the same ffmpeg path as WAV, priming removed."""
    original = tone(3.0, 330.0, 0.5)
    source = tmp_path / "line.wav"
    write_wav(source, original, 16_000)
    compressed = tmp_path / f"line{suffix}"
    encode = ffmpeg.FfmpegCommand(
        (ffmpeg_executable(), "-v", "error", "-y", "-i", str(source), "-c:a", codec, "-b:a", "128k", str(compressed))
    )
    run(encode, f"{compressed}: encoding the test dialogue")

    decoded = decode_audio(compressed).astype(np.float64) / 32767.0
    assert abs(len(decoded) - len(original)) <= 16  # 1 ms at 16 kHz
    middle = slice(1600, 16_000 * 2)
    assert np.corrcoef(decoded[middle], original[middle])[0, 1] > 0.99

    wav = run(decode_to_wav(compressed, tmp_path / "48k.wav", sample_rate=48_000), "decoding to WAV")
    assert wav.stdout == b"" and (tmp_path / "48k.wav").stat().st_size > 3 * 48_000 * 2
