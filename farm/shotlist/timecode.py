"""Timecodes and frame rates as exact fractions.

Audio cut points are kept as exact rational seconds (never floats) so that slicing a dialogue track at
16 kHz or 48 kHz is sample-exact and the same shot list always yields the same samples. ``HH:MM:SS:FF``
is SMPTE non-drop-frame: frames count at the nominal (rounded) rate, as editing software writes it.
"""

from __future__ import annotations

import re
from fractions import Fraction

_SECONDS = re.compile(r"^(?P<seconds>\d+(\.\d+)?)s?$")
_CLOCK = re.compile(r"^(?P<h>\d{1,2}):(?P<m>\d{2}):(?P<s>\d{2})(\.(?P<ms>\d{1,3}))?$")
_SMPTE = re.compile(r"^(?P<h>\d{1,2}):(?P<m>\d{2}):(?P<s>\d{2}):(?P<f>\d{2})$")

# Decimal spellings of the NTSC rates mean the exact rationals every tool uses.
_NTSC_RATES = {
    Fraction("23.976"): Fraction(24000, 1001),
    Fraction("29.97"): Fraction(30000, 1001),
    Fraction("47.952"): Fraction(48000, 1001),
    Fraction("59.94"): Fraction(60000, 1001),
}


class TimecodeError(ValueError):
    """A timecode string or number that cannot be read; the message says what form is expected."""


def parse_frame_rate(value: int | float | str) -> Fraction:
    rate = Fraction(str(value))
    return _NTSC_RATES.get(rate, rate)


def parse_frame_rate_text(text: str) -> Fraction:
    """The inverse of ``format_frame_rate``: ``"25"`` or ``"30000/1001"``."""
    return Fraction(text)


def format_frame_rate(rate: Fraction) -> str:
    return str(rate.numerator) if rate.denominator == 1 else f"{rate.numerator}/{rate.denominator}"


def parse_timecode(value: int | float | str, fps: Fraction) -> Fraction:
    """Seconds from ``12.5``, ``"12.5"``, ``"12.5s"``, ``"00:01:05.250"`` or ``"00:01:05:12"`` (frames)."""
    if isinstance(value, bool):
        raise TimecodeError("expected a timecode, got a boolean")
    if isinstance(value, int | float):
        if value < 0:
            raise TimecodeError(f"{value} is negative")
        return Fraction(str(value))
    text = value.strip()
    if match := _SECONDS.match(text):
        return Fraction(match["seconds"])
    if match := _CLOCK.match(text):
        minutes, seconds = int(match["m"]), int(match["s"])
        _check_clock_fields(minutes, seconds)
        millis = Fraction(int((match["ms"] or "0").ljust(3, "0")), 1000)
        return (int(match["h"]) * 60 + minutes) * 60 + seconds + millis
    if match := _SMPTE.match(text):
        minutes, seconds, frame = int(match["m"]), int(match["s"]), int(match["f"])
        _check_clock_fields(minutes, seconds)
        nominal = nominal_frame_rate(fps)
        if frame >= nominal:
            raise TimecodeError(f"frame field {frame:02d} is not below the frame rate {nominal}")
        total_frames = ((int(match["h"]) * 60 + minutes) * 60 + seconds) * nominal + frame
        return Fraction(total_frames) / fps
    raise TimecodeError(f"'{value}' is not a timecode")


def nominal_frame_rate(fps: Fraction) -> int:
    return round(fps)


def format_clock(seconds: Fraction) -> str:
    """``HH:MM:SS.mmm``, rounded to the nearest millisecond."""
    total_millis = round(seconds * 1000)
    hours, rest = divmod(total_millis, 3_600_000)
    minutes, rest = divmod(rest, 60_000)
    secs, millis = divmod(rest, 1000)
    return f"{hours:02d}:{minutes:02d}:{secs:02d}.{millis:03d}"


def format_smpte(frames: int, fps: Fraction) -> str:
    """Non-drop-frame ``HH:MM:SS:FF`` for a frame count at ``fps``."""
    nominal = nominal_frame_rate(fps)
    total_seconds, frame = divmod(frames, nominal)
    minutes, secs = divmod(total_seconds, 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours:02d}:{minutes:02d}:{secs:02d}:{frame:02d}"


def _check_clock_fields(minutes: int, seconds: int) -> None:
    if minutes > 59:
        raise TimecodeError(f"minutes field {minutes} is above 59")
    if seconds > 59:
        raise TimecodeError(f"seconds field {seconds} is above 59")
