"""Timecodes and frame rates as exact fractions.

Audio cut points are kept as exact rational seconds (never floats) so that slicing a dialogue track at
16 kHz or 48 kHz is sample-exact and the same shot list always yields the same samples.

``HH:MM:SS:FF`` is SMPTE non-drop-frame: frames count at the nominal (rounded) rate. ``HH:MM:SS;FF`` is
drop-frame, which exists at 29.97 and 59.94 fps only: its labels skip frames 00 and 01 (00-03 at 59.94)
at the start of every minute not divisible by ten, so the label stays close to the clock. Both are read
and written by OpenTimelineIO (``from_timecode``, ``to_timecode``), the same arithmetic the editors'
timelines use; this module only checks the fields first, so that a mistake is named precisely.
"""

from __future__ import annotations

import re
from fractions import Fraction

import opentimelineio as otio

_SECONDS = re.compile(r"^(?P<seconds>\d+(\.\d+)?)s?$")
_CLOCK = re.compile(r"^(?P<h>\d{1,2}):(?P<m>\d{2}):(?P<s>\d{2})(\.(?P<ms>\d{1,3}))?$")
_SMPTE = re.compile(r"^(?P<h>\d{1,2}):(?P<m>\d{2}):(?P<s>\d{2})(?P<divider>[:;])(?P<f>\d{2})$")

# Decimal spellings of the NTSC rates mean the exact rationals every tool uses.
_NTSC_RATES = {
    Fraction("23.976"): Fraction(24000, 1001),
    Fraction("29.97"): Fraction(30000, 1001),
    Fraction("47.952"): Fraction(48000, 1001),
    Fraction("59.94"): Fraction(60000, 1001),
}
DROP_FRAME_RATES = {Fraction(30000, 1001): 2, Fraction(60000, 1001): 4}
"""The rates drop-frame timecode exists at, and how many frame labels it skips each minute (but every tenth)."""

TIMECODE_FORMS = "write seconds (12.5), HH:MM:SS.mmm, HH:MM:SS:FF, or HH:MM:SS;FF (drop-frame, at 29.97 and 59.94 fps)"
"""What a located timecode error suggests instead."""


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
    """Seconds from ``12.5``, ``"12.5"``, ``"12.5s"``, ``"00:01:05.250"``, ``"00:01:05:12"`` (frames) or
    ``"00:01:05;12"`` (drop-frame, at 29.97 and 59.94 fps)."""
    if isinstance(value, bool):
        raise TimecodeError("expected a timecode, got a boolean")
    if isinstance(value, int | float):
        if value < 0:
            raise TimecodeError(f"{value} is negative")
        return Fraction(value) if type(value) is int else Fraction(str(value))  # a float as written
    text = value.strip()
    if match := _SECONDS.match(text):
        return Fraction(match["seconds"])
    if match := _CLOCK.match(text):
        minutes, seconds = int(match["m"]), int(match["s"])
        _check_clock_fields(minutes, seconds)
        millis = Fraction(int((match["ms"] or "0").ljust(3, "0")), 1000)
        return (int(match["h"]) * 60 + minutes) * 60 + seconds + millis
    if match := _SMPTE.match(text):
        return Fraction(smpte_frames(match, fps)) / fps
    raise TimecodeError(f"'{value}' is not a timecode")


def is_smpte(text: str) -> bool:
    """``HH:MM:SS:FF`` or ``HH:MM:SS;FF``: a timecode in frames, which needs the frame rate to be read."""
    return bool(_SMPTE.match(text.strip()))


def smpte_frames(match: re.Match[str], fps: Fraction) -> int:
    """The frame number an SMPTE label names at ``fps``, by OpenTimelineIO, after checking each field."""
    minutes, seconds, frame = int(match["m"]), int(match["s"]), int(match["f"])
    _check_clock_fields(minutes, seconds)
    nominal = nominal_frame_rate(fps)
    if frame >= nominal:
        raise TimecodeError(f"frame field {frame:02d} is not below the frame rate {nominal}")
    text = match.group(0)
    if match["divider"] == ";":
        skipped = DROP_FRAME_RATES.get(fps)
        if skipped is None:
            raise TimecodeError(
                f"{text} is drop-frame timecode (';' before the frames), which exists only at 29.97 and 59.94 fps, "
                f"not at {format_frame_rate(fps)} fps; write {text.replace(';', ':')}"
            )
        if seconds == 0 and frame < skipped and minutes % 10 != 0:
            first = f"{text[:-2]}{skipped:02d}"
            raise TimecodeError(
                f"{text} does not exist in drop-frame timecode: frames 00 to {skipped - 1:02d} are skipped "
                f"at the start of every minute not divisible by ten; the minute starts at {first}"
            )
    try:
        return round(otio.opentime.from_timecode(text, float(fps)).value)
    except ValueError as exc:  # the checks above leave OTIO nothing to refuse; kept for a future OTIO's rules
        raise TimecodeError(f"{text}: {exc}") from exc


def nominal_frame_rate(fps: Fraction) -> int:
    return round(fps)


def round_ratio(numerator: int, denominator: int) -> int:
    """``round(Fraction(numerator, denominator))`` (halves to even) without building the Fraction: exactly
    the same integer, at a fraction of the cost in a loop over every shot of a long episode."""
    if denominator < 0:
        numerator, denominator = -numerator, -denominator
    floor, remainder = divmod(numerator, denominator)
    twice = 2 * remainder
    if twice < denominator or (twice == denominator and floor % 2 == 0):
        return floor
    return floor + 1


def format_clock(seconds: Fraction) -> str:
    """``HH:MM:SS.mmm``, rounded to the nearest millisecond."""
    return _format_millis(round(seconds * 1000))


def format_sample_clock(sample: int, sample_rate: int) -> str:
    """``format_clock(Fraction(sample, sample_rate))``, in integers (a plan shows two per shot)."""
    return _format_millis(round_ratio(sample * 1000, sample_rate))


def _format_millis(total_millis: int) -> str:
    hours, rest = divmod(total_millis, 3_600_000)
    minutes, rest = divmod(rest, 60_000)
    secs, millis = divmod(rest, 1000)
    return f"{hours:02d}:{minutes:02d}:{secs:02d}.{millis:03d}"


def format_smpte(frames: int, fps: Fraction, *, drop_frame: bool = False) -> str:
    """``HH:MM:SS:FF`` (non-drop-frame) for a frame count at ``fps``, or ``HH:MM:SS;FF`` with ``drop_frame``
    (at 29.97 and 59.94 fps only), by OpenTimelineIO."""
    if drop_frame and fps not in DROP_FRAME_RATES:
        raise TimecodeError(f"drop-frame timecode exists only at 29.97 and 59.94 fps, not {format_frame_rate(fps)}")
    time = otio.opentime.RationalTime(frames, float(fps))
    return otio.opentime.to_timecode(time, float(fps), drop_frame)


def _check_clock_fields(minutes: int, seconds: int) -> None:
    if minutes > 59:
        raise TimecodeError(f"minutes field {minutes} is above 59")
    if seconds > 59:
        raise TimecodeError(f"seconds field {seconds} is above 59")
