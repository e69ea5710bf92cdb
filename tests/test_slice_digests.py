"""A plan hashes its dialogue slices straight from each track, once each, and in integers: the
digests, lengths and clocks are exactly what cutting the samples and Fraction arithmetic give, and a
track edited between plans is read afresh (issue 18, part 5c)."""

from __future__ import annotations

import wave
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from farm.catalog import ModelCatalog
from farm.errors import MediaError
from farm.media.audio import MODEL_SAMPLE_RATE, SampleRange, cut_audio, samples_digest
from farm.media.slice_digests import SliceDigests
from farm.plan import _frames, plan_shot_list
from farm.settings import REPO_ROOT
from farm.shotlist.load import load_shot_list
from farm.shotlist.timecode import format_clock, format_sample_clock, round_ratio
from farm.shotlist.types import AudioCut
from tests.shotlists import make_project

RATE = MODEL_SAMPLE_RATE


def _wav(path: Path, samples: np.ndarray, rate: int = RATE) -> Path:
    with wave.open(str(path), "wb") as out:
        out.setnchannels(samples.shape[1] if samples.ndim == 2 else 1)
        out.setsampwidth(2)
        out.setframerate(rate)
        out.writeframes(samples.astype("<i2").tobytes())
    return path


def _noise(samples: int, channels: int = 1, seed: int = 3) -> np.ndarray:
    return np.random.default_rng(seed).integers(-20000, 20000, size=(samples, channels), dtype=np.int16)


def _ranges(length: int) -> list[SampleRange]:
    return [
        SampleRange(0, 1),
        SampleRange(0, RATE),
        SampleRange(7919, 23456),
        SampleRange(length - 300, length + 500),  # runs past the end: silence
        SampleRange(length + 10, length + 20),  # wholly past the end
    ]


@pytest.mark.parametrize("kind", ["native", "decoded"])
def test_every_slice_digest_is_the_digest_of_its_cut_samples(tmp_path: Path, kind: str) -> None:
    length = 3 * RATE
    track = (
        _wav(tmp_path / "native.wav", _noise(length))
        if kind == "native"  # read from its data chunk
        else _wav(tmp_path / "stereo.wav", _noise(length * 44100 // RATE, channels=2), rate=44100)  # by ffmpeg
    )
    with SliceDigests() as slices:
        for samples in [*_ranges(length), SampleRange(0, RATE)]:  # the last one asked for again
            assert slices.digest(track, samples) == samples_digest(cut_audio(track, samples))


def test_a_slice_of_a_file_that_is_not_audio_is_a_media_error(tmp_path: Path) -> None:
    bad = tmp_path / "notes.wav"
    bad.write_text("not audio")
    with SliceDigests() as slices, pytest.raises(MediaError):
        slices.digest(bad, SampleRange(0, 100))


def test_a_track_edited_between_plans_is_hashed_afresh(tmp_path: Path) -> None:
    """Same file, same size, other samples (a re-export over the old one): the next plan keys the new ones."""
    shot_list_path = make_project(tmp_path)
    track = tmp_path / "media" / "sc01_dialogue.wav"
    catalog = ModelCatalog(REPO_ROOT / "models")

    def slices_and_keys() -> list[tuple[str, str]]:
        plan = plan_shot_list(load_shot_list(shot_list_path, catalog=catalog), catalog)
        for task in plan.tasks:
            assert task.audio.sha256 == samples_digest(cut_audio(task.audio.path, task.audio.sample_range))
        return [(task.audio.sha256, task.cache_key) for task in plan.tasks]

    before = slices_and_keys()
    with wave.open(str(track), "rb") as original:
        frames, rate = original.getnframes(), original.getframerate()
    size = track.stat().st_size
    _wav(track, _noise(frames, seed=11), rate=rate)
    assert track.stat().st_size == size
    after = slices_and_keys()
    assert all(old[0] != new[0] and old[1] != new[1] for old, new in zip(before, after, strict=True))


@settings(deadline=None)  # a loaded machine may take its time; the property is what is tested
@given(st.integers(-(10**12), 10**12), st.integers(1, 10**6))
def test_round_ratio_is_round_of_the_fraction(numerator: int, denominator: int) -> None:
    assert round_ratio(numerator, denominator) == round(Fraction(numerator, denominator))
    assert round_ratio(2 * numerator + 1, 2) == round(Fraction(2 * numerator + 1, 2))  # halves go to even


@settings(deadline=None)  # a loaded machine may take its time; the property is what is tested
@given(st.integers(0, 10**9), st.sampled_from([8000, 16000, 44100, 48000]))
def test_a_sample_clock_reads_as_the_fraction_clock(sample: int, rate: int) -> None:
    assert format_sample_clock(sample, rate) == format_clock(Fraction(sample, rate))


@settings(deadline=None)  # a loaded machine may take its time; the property is what is tested
@given(
    st.fractions(min_value=0, max_value=10**5, max_denominator=10**4),
    st.fractions(min_value=Fraction(1, 100), max_value=600, max_denominator=10**4),
    st.sampled_from([Fraction(25), Fraction(24000, 1001), Fraction(30000, 1001), Fraction(50), Fraction(24)]),
)
def test_a_cut_lasts_the_frames_fraction_arithmetic_gives(start: Fraction, length: Fraction, fps: Fraction) -> None:
    cut = AudioCut("t", start, start + length)
    assert _frames(cut, fps) == round(cut.duration * fps)
