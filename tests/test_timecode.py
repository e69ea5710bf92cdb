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


@given(st.integers(min_value=0, max_value=24 * 3600 * 24 - 1), st.sampled_from(RATES))
def test_smpte_round_trip_is_exact_to_the_frame(frames: int, fps: Fraction) -> None:
    """Within a day: SMPTE timecode wraps at 24 hours (OpenTimelineIO writes it so)."""
    seconds = parse_timecode(format_smpte(frames, fps), fps)
    assert seconds * fps == frames


def test_ntsc_decimal_rates_mean_the_exact_rationals() -> None:
    assert parse_frame_rate(29.97) == Fraction(30000, 1001)
    assert parse_frame_rate(23.976) == Fraction(24000, 1001)
    assert parse_frame_rate(25) == Fraction(25)


NTSC_30 = Fraction(30000, 1001)
NTSC_60 = Fraction(60000, 1001)


@pytest.mark.parametrize(
    ("text", "fps", "frame"),
    [
        ("00:00:04;14", NTSC_30, 4 * 30 + 14),  # no minute boundary crossed: no label skipped yet
        ("00:01:00;02", NTSC_30, 1800),  # the first label of minute 1: 00 and 01 were skipped
        ("00:10:00;00", NTSC_30, 17982),  # every tenth minute keeps its 00: 10 min = 9 x 2 labels dropped
        ("01:00:00;00", NTSC_30, 107892),  # an hour of 29.97 fps is 107,892 frames, the label says one hour
        ("00:00:04;14", NTSC_60, 4 * 60 + 14),
        ("00:01:00;04", NTSC_60, 3600),  # 59.94 skips four labels a minute
        ("00:10:00;00", NTSC_60, 35964),
    ],
)
def test_drop_frame_timecodes_name_the_right_frame(text: str, fps: Fraction, frame: int) -> None:
    assert parse_timecode(text, fps) * fps == frame
    assert format_smpte(frame, fps, drop_frame=True) == text


def test_a_drop_frame_cut_is_the_right_sample_at_48k() -> None:
    seconds = parse_timecode("00:01:00;02", NTSC_30)

    assert seconds * 48_000 == 1800 * 1601.6  # 1,601.6 samples per 29.97 fps frame, exactly
    assert seconds * 48_000 == 2_882_880


@pytest.mark.parametrize("fps", [Fraction(25), Fraction(24), Fraction(30), Fraction(24000, 1001)])
def test_drop_frame_at_a_rate_without_it_is_refused_with_the_fix(fps: Fraction) -> None:
    with pytest.raises(TimecodeError, match=r"exists only at 29.97 and 59.94 fps.*write 00:00:04:14"):
        parse_timecode("00:00:04;14", fps)


@pytest.mark.parametrize(
    ("text", "fps"), [("00:01:00;00", NTSC_30), ("00:01:00;01", NTSC_30), ("00:03:00;03", NTSC_60)]
)
def test_a_skipped_drop_frame_label_is_refused(text: str, fps: Fraction) -> None:
    with pytest.raises(TimecodeError, match="does not exist in drop-frame timecode"):
        parse_timecode(text, fps)


@given(st.integers(min_value=0, max_value=24 * 107_892 - 1), st.sampled_from([NTSC_30, NTSC_60]))
def test_drop_frame_round_trip_is_exact_to_the_frame(frames: int, fps: Fraction) -> None:
    """Within a day at 29.97 fps (107,892 frames an hour); SMPTE timecode wraps at 24 hours."""
    assert parse_timecode(format_smpte(frames, fps, drop_frame=True), fps) * fps == frames
