"""Audio checks at a cut: gaps and overlaps in the dialogue, clicks, and jumps in loudness.

They read what assembly measured while the samples passed through it (per-shot loudness, the 5 ms
either side of every cut) and the shots' slices of the original tracks; nothing is decoded again.
The audio comes from the shot list's timecodes, so a re-render cannot fix these: they are not
retakeable.
"""

from __future__ import annotations

from collections.abc import Iterator
from fractions import Fraction

import numpy as np

from farm.edit.checks.base import CheckContext, Measurement, Subject
from farm.shotlist.timecode import format_clock
from farm.shotlist.types import CheckPolicy

CLICK_CONTEXT_SAMPLES = 48
"""The step across a cut is compared with the steps in the 1 ms either side of it."""


class AudioGapCheck:
    """Consecutive shots cut from one track should continue it: a gap drops dialogue, an overlap repeats it.

    The value is the size of the gap or overlap in milliseconds. Timecodes that are not on frame
    boundaries round to whole frames when planned, which can leave up to half a frame (20 ms at 25 fps);
    the default threshold lets that through. A shot's ``audio.slip`` is a deliberate offset against its
    picture (the lip_sync check's business), so the timecodes are compared as the shot list gives them.
    """

    name = "audio_gap"
    unit = "ms"
    default_threshold = 25.0
    default_policy = CheckPolicy.FAIL
    retakeable = False
    needs_pictures = False
    description = "gap or overlap in the dialogue between consecutive shots cut from one track"

    def measure(self, context: CheckContext) -> Iterator[Measurement]:
        for before, after in context.cuts():
            first, second = before.planned_audio, after.planned_audio
            if first.path != second.path:
                continue
            gap = Fraction(second.start_sample, second.sample_rate) - Fraction(first.end_sample, first.sample_rate)
            milliseconds = float(gap * 1000)
            if gap > 0:
                what = f"gap of {milliseconds:.0f} ms: {format_clock(first.end_seconds)}-"
                what += f"{format_clock(second.start_seconds)} of track {first.track_id} is dropped"
            elif gap < 0:
                what = f"overlap of {-milliseconds:.0f} ms: {format_clock(second.start_seconds)}-"
                what += f"{format_clock(first.end_seconds)} of track {first.track_id} is heard twice"
            else:
                what = f"track {first.track_id} continues sample-exactly"
            yield Measurement(
                subject=Subject.cut(before.shot_id, after.shot_id),
                value=abs(milliseconds),
                detail=what,
                culprits=(after.shot_id,),
                frame=context.cut_frame(after),
                details={"signed_ms": milliseconds},
            )


class AudioClickCheck:
    """A step in the waveform across a cut, beyond what the signal does on either side: a click.

    The value is the excess step in percent of full scale: |x[cut] - x[cut - 1]| less the largest
    step within 1 ms either side. A seamless cut (the same track continuing) measures ~0.
    """

    name = "audio_click"
    unit = "% FS"
    default_threshold = 5.0
    default_policy = CheckPolicy.WARN
    retakeable = False
    needs_pictures = False
    description = "click (waveform discontinuity) at a cut"

    def measure(self, context: CheckContext) -> Iterator[Measurement]:
        for before, after in context.cuts():
            tail = context.assembly.shot(before.shot_id).audio.tail
            head = context.assembly.shot(after.shot_id).audio.head
            if not len(tail) or not len(head):
                continue
            step = abs(float(head[0] - tail[-1]))
            around = np.concatenate(
                [np.abs(np.diff(tail[-CLICK_CONTEXT_SAMPLES:])), np.abs(np.diff(head[:CLICK_CONTEXT_SAMPLES]))]
            )
            typical = float(around.max()) if len(around) else 0.0
            excess = max(0.0, step - typical) * 100.0
            yield Measurement(
                subject=Subject.cut(before.shot_id, after.shot_id),
                value=excess,
                detail=f"the waveform steps {step * 100:.1f} % of full scale across the cut "
                f"(at most {typical * 100:.1f} % around it)",
                culprits=(after.shot_id,),
                frame=context.cut_frame(after),
            )


class LoudnessJumpCheck:
    """Dialogue level changing abruptly at a cut: the integrated loudness of the two shots (BS.1770)."""

    name = "loudness_jump"
    unit = "LU"
    default_threshold = 6.0
    default_policy = CheckPolicy.WARN
    retakeable = False
    needs_pictures = False
    description = "loudness jump between consecutive shots"

    def measure(self, context: CheckContext) -> Iterator[Measurement]:
        for before, after in context.cuts():
            first = context.assembly.shot(before.shot_id).audio.loudness_lufs
            second = context.assembly.shot(after.shot_id).audio.loudness_lufs
            subject = Subject.cut(before.shot_id, after.shot_id)
            if first is None or second is None:
                quiet = before.shot_id if first is None else after.shot_id
                yield Measurement(subject, None, "", skip_reason=f"{quiet} is silent or under 400 ms")
                continue
            yield Measurement(
                subject=subject,
                value=abs(second - first),
                detail=f"{first:.1f} LUFS then {second:.1f} LUFS",
                culprits=(after.shot_id,),
                frame=context.cut_frame(after),
                details={"before_lufs": round(first, 2), "after_lufs": round(second, 2)},
            )
