"""The edit's audio encoded in parallel AAC pieces joins sample-exactly: no gap, no overlap, no click.

Each join is checked on the decoded audio against the laid samples times the gain (within AAC's coding
noise), against a single-pass encode of the same samples, and for a zero cross-correlation offset.
"""

from __future__ import annotations

import itertools
import subprocess
import wave
from pathlib import Path

import numpy as np
import pyloudnorm
import pytest

from farm.edit.assemble import assemble_edit
from farm.edit.audio_encode import AAC_FRAME_SAMPLES, PRE_ROLL_FRAMES, encode_edit_audio, plan_pieces
from farm.edit.loudness import Normalisation, measure_loudness
from farm.media.audio import decode_audio
from farm.media.ffmpeg import DEFAULT_ENCODE, DUPLICATE_MONO_TO_STEREO, ffmpeg_executable
from farm.media.video import stream_start_times
from farm.shotlist.types import OutputSpec
from tests.edit_shots import FPS, solid_frames, tone, write_frames, write_track
from tests.edit_shots import edit_shot as make_edit_shot
from tests.shotlists import DEMO_MEDIA

RATE = 48_000
WINDOW = 2 * AAC_FRAME_SAMPLES
"""Samples either side of a join that are compared."""
MAX_LAG = 64


def laid_signal(seconds: float) -> np.ndarray:
    """Dialogue over a quiet rising chirp: never silent at a join, and no period for a lag to hide in."""
    from scipy.signal import chirp

    speech = decode_audio(DEMO_MEDIA / "sc01_dialogue.wav", RATE).astype(np.float64) / 32768
    count = int(seconds * RATE)
    speech = np.tile(speech, count // len(speech) + 1)[:count]
    times = np.arange(count) / RATE
    sweep = 0.1 * chirp(times, f0=150.0, t1=seconds, f1=3_000.0, method="logarithmic")
    return 0.5 * speech + sweep


def write_laid_wav(path: Path, samples: np.ndarray) -> np.ndarray:
    """``samples`` as the 16-bit WAV assembly lays; returns what the WAV holds, as floats."""
    quantised = np.round(samples * 32767).astype("<i2")
    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(RATE)
        out.writeframes(quantised.tobytes())
    return quantised.astype(np.float64) / 32768


def decoded(path: Path) -> np.ndarray:
    """Both channels as decoded by ffmpeg from t = 0 (the edit list applied), shape (samples, 2)."""
    raw = subprocess.run(
        [ffmpeg_executable(), "-v", "error", "-i", str(path), "-f", "f32le", "-"], capture_output=True, check=True
    ).stdout
    return np.frombuffer(raw, "<f4").reshape(-1, 2).astype(np.float64)


def encode(wav: Path, work: Path, name: str, gain: Normalisation, pieces: int) -> tuple[np.ndarray, list[int]]:
    (work / name).mkdir()
    plan = encode_edit_audio(
        wav,
        work / name / "audio.m4a",
        work / name,
        filters=[DUPLICATE_MONO_TO_STEREO, *gain.audio_filters()],
        settings=DEFAULT_ENCODE,
        aac_coder="fast",
        pieces=pieces,
        workers=2,
    ).plan
    return decoded(work / name / "audio.m4a"), [piece.first_sample for piece in plan[1:]]


def snr_db(reference: np.ndarray, actual: np.ndarray) -> float:
    return float(10 * np.log10(np.sum(reference**2) / np.sum((actual - reference) ** 2)))


def best_lag(reference: np.ndarray, audio: np.ndarray, join: int) -> int:
    """The shift of ``audio`` against ``reference`` around ``join`` that correlates best."""
    template = reference[join - WINDOW : join + WINDOW]
    search = audio[join - WINDOW - MAX_LAG : join + WINDOW + MAX_LAG]
    return int(np.argmax(np.correlate(search, template, mode="valid"))) - MAX_LAG


def test_pieces_tile_the_timeline_on_aac_frames() -> None:
    total = 10 * RATE + 77
    plan = plan_pieces(total, 4)

    assert plan[0].first_sample == plan[0].input_start == 0 and plan[-1].end_sample == plan[-1].input_end == total
    for before, after in itertools.pairwise(plan):
        assert before.end_sample == after.first_sample and after.first_sample % AAC_FRAME_SAMPLES == 0
        assert after.first_sample - after.input_start == PRE_ROLL_FRAMES * AAC_FRAME_SAMPLES
        assert before.input_end > before.end_sample
    assert len(plan_pieces(3 * AAC_FRAME_SAMPLES, 8)) == 3  # never a piece without a frame
    with pytest.raises(ValueError):
        plan_pieces(0, 2)


def test_joined_pieces_decode_to_the_laid_samples_times_the_gain(tmp_path: Path) -> None:
    laid = write_laid_wav(tmp_path / "laid.wav", laid_signal(9.0))
    gain = Normalisation(-3.0, False)
    expected = laid * 10 ** (gain.gain_db / 20)

    joined, joins = encode(tmp_path / "laid.wav", tmp_path, "pieces", gain, pieces=4)
    single, _ = encode(tmp_path / "laid.wav", tmp_path, "single", gain, pieces=1)

    assert len(joins) == 3
    assert joined.shape == single.shape == (len(laid), 2)  # not a sample gained or lost
    assert np.max(np.abs(joined[:, 0] - joined[:, 1])) < 0.01  # dual mono
    overall = snr_db(expected, joined[:, 0])
    assert overall > 30.0
    for join in joins:
        around = slice(join - WINDOW, join + WINDOW)
        assert snr_db(expected[around], joined[around, 0]) > overall - 6.0, join  # no click at the join
        assert snr_db(single[around, 0], joined[around, 0]) > 30.0, join  # what one pass would have decoded
        assert best_lag(expected, joined[:, 0], join) == 0, join


def test_peak_limited_pieces_join_as_a_single_limited_pass(tmp_path: Path) -> None:
    """The limiter's state at a join is rebuilt by the pre-roll: the joins match a single pass."""
    write_laid_wav(tmp_path / "laid.wav", 1.6 * laid_signal(7.0).clip(-0.6, 0.6))
    gain = Normalisation(4.0, True, -2.0)

    joined, joins = encode(tmp_path / "laid.wav", tmp_path, "pieces", gain, pieces=3)
    single, _ = encode(tmp_path / "laid.wav", tmp_path, "single", gain, pieces=1)

    assert joined.shape == single.shape
    assert np.max(np.abs(joined)) < 10 ** (-1.0 / 20)
    for join in joins:
        around = slice(join - WINDOW, join + WINDOW)
        assert snr_db(single[around, 0], joined[around, 0]) > 30.0, join
        assert best_lag(single[:, 0], joined[:, 0], join) == 0, join


def test_an_edit_in_pieces_keeps_every_sample_in_place(tmp_path: Path) -> None:
    """Impulses in the dialogue are found at their exact sample in a three-piece edit, the audio ends on
    the timeline's last sample, and both streams start at zero."""
    track = 0.01 * tone(12.0, 300.0)
    impulses = [4_000, 60_000, 100_000, 150_000]  # 16 kHz positions, spread across the pieces
    track[impulses] = 0.7
    track_path = write_track(tmp_path / "dialogue.wav", track)
    video = write_frames(tmp_path / "a.mp4", [solid_frames(275, (90, 90, 90))], 275, width=160, height=96)
    shots = [make_edit_shot("a", video, 275, track_path, 0)]

    result = assemble_edit(shots, tmp_path / "edit", output=OutputSpec(FPS, 160, 96), audio_pieces=3)

    audio = decoded(result.path)[:, 0]  # ffmpeg honours the edit list's end as well as its start
    assert len(audio) == result.audio_samples == 11 * RATE
    assert result.audio_duration_in_file == 11.0
    assert stream_start_times(result.path) == (0.0, 0.0)
    for position in (3 * impulse for impulse in impulses):
        window = np.abs(audio[position - 300 : position + 300])
        assert int(np.argmax(window)) - 300 in (-1, 0, 1), position


def test_the_pieces_metered_where_they_were_encoded_give_the_delivered_loudness(tmp_path: Path) -> None:
    """The loudness the encoding threads measure, piece by piece, is ffmpeg ebur128's of the joined file."""
    write_laid_wav(tmp_path / "laid.wav", laid_signal(12.0))
    filters = [DUPLICATE_MONO_TO_STEREO, *Normalisation(-4.0, False).audio_filters()]
    metered = {}
    for pieces in (1, 4):
        (tmp_path / str(pieces)).mkdir()
        encoded = encode_edit_audio(
            tmp_path / "laid.wav",
            tmp_path / str(pieces) / "audio.m4a",
            tmp_path / str(pieces),
            filters=filters,
            settings=DEFAULT_ENCODE,
            aac_coder="fast",
            pieces=pieces,
            workers=2,
        )
        metered[pieces] = encoded.loudness
    ebur128 = measure_loudness(tmp_path / "4" / "audio.m4a", duplicate_mono_to_stereo=False)
    bs1770 = pyloudnorm.Meter(RATE).integrated_loudness(decoded(tmp_path / "4" / "audio.m4a"))

    assert metered[4].integrated_lufs == pytest.approx(bs1770, abs=0.01)  # ebur128's histogram rounds
    assert metered[4].true_peak_dbtp == pytest.approx(ebur128.true_peak_dbtp, abs=0.1)  # printed to 0.1
    assert metered[4].loudness_range_lu == pytest.approx(ebur128.loudness_range_lu, abs=0.2)
    for name in ("integrated_lufs", "true_peak_dbtp", "loudness_range_lu"):
        assert getattr(metered[4], name) == pytest.approx(getattr(metered[1], name), abs=0.01), name  # as one piece
