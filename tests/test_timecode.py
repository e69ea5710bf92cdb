"""Timecodes: every accepted spelling, exact round trips, and the frame-rate edge cases."""

from __future__ import annotations

from fractions import Fraction

import pytest
from hypothesis import given
from hypothesis import strategies as st

from farm.shotlist.timecode import (
    TimecodeError,
    format_clock,
    format_smpte,
    parse_frame_rate,
    parse_timecode,
)

RATES = [Fraction(24), Fraction(25), Fraction(30), Fraction(50), Fraction(24000, 1001), Fraction(30000, 1001)]


@pytest.mark.parametrize(
    ("text", "fps", "seconds"),
    [
        (12.5, Fraction(25), Fraction(25, 2)),
        (0, Fraction(25), Fraction(0)),
        ("12.5", Fraction(25), Fraction(25, 2)),
        ("12.5s", Fraction(25), Fraction(25, 2)),
        ("00:01:05.250", Fraction(25), Fraction(6525, 100)),
        ("00:01:05.5", Fraction(25), Fraction(131, 2)),
        ("01:00:00", Fraction(25), Fraction(3600)),
        ("00:00:01:12", Fraction(25), Fraction(37, 25)),
        ("00:00:01:12", Fraction(24), Fraction(36, 24)),
        ("00:00:01:00", Fraction(30000, 1001), Fraction(30) / Fraction(30000, 1001)),
    ],
)
def test_accepted_spellings(text: str | float, fps: Fraction, seconds: Fraction) -> None:
    assert parse_timecode(text, fps) == seconds


@pytest.mark.parametrize("text", ["1:2", "00:60:00", "00:00:61", "00:00:01:25", "-1", "abc", "00:00:01.1234"])
def test_malformed_timecodes_are_refused(text: str) -> None:
    with pytest.raises(TimecodeError):
        parse_timecode(text, Fraction(25))


def test_negative_seconds_are_refused() -> None:
    with pytest.raises(TimecodeError):
        parse_timecode(-0.5, Fraction(25))


@given(st.integers(min_value=0, max_value=99 * 3_600_000 - 1))
def test_clock_round_trip_is_exact_to_the_millisecond(millis: int) -> None:
    assert parse_timecode(format_clock(Fraction(millis, 1000)), Fraction(25)) == Fraction(millis, 1000)


@given(st.integers(min_value=0, max_value=99 * 3600 * 24), st.sampled_from(RATES))
def test_smpte_round_trip_is_exact_to_the_frame(frames: int, fps: Fraction) -> None:
    seconds = parse_timecode(format_smpte(frames, fps), fps)
    assert seconds * fps == frames


def test_ntsc_decimal_rates_mean_the_exact_rationals() -> None:
    assert parse_frame_rate(29.97) == Fraction(30000, 1001)
    assert parse_frame_rate(23.976) == Fraction(24000, 1001)
    assert parse_frame_rate(25) == Fraction(25)
