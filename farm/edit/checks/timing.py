"""Per-shot conformance: video frames against the audio slice, and stream parameters against the edit."""

from __future__ import annotations

from collections.abc import Iterator
from fractions import Fraction

from farm.edit.checks.base import CheckContext, Measurement, Subject
from farm.shotlist.types import CheckPolicy


class AvDurationCheck:
    """A shot's video must last exactly as long as its dialogue slice.

    The value is |frames in the file / fps - slice samples / slice rate| in milliseconds. Assembly keeps
    the edit in sync regardless (it pads or trims the picture to the plan), so a mismatch means the
    renderer produced the wrong number of frames and the shot should be rendered again.
    """

    name = "av_duration"
    unit = "ms"
    default_threshold = 0.1
    """Exact, up to the rounding of one sample at 16 kHz (0.0625 ms) at rates like 29.97 fps."""
    default_policy = CheckPolicy.RETAKE
    retakeable = True
    needs_pictures = False
    description = "video frames vs audio slice duration (must be exact)"

    def measure(self, context: CheckContext) -> Iterator[Measurement]:
        for shot in context.shots:
            frames = context.assembly.shot(shot.shot_id).file_frames
            video = Fraction(frames) / shot.fps
            audio = Fraction(shot.audio.end_sample - shot.audio.start_sample, shot.audio.sample_rate)
            difference = float(abs(video - audio) * 1000)
            yield Measurement(
                subject=Subject.shot(shot.shot_id),
                value=difference,
                detail=f"video {frames} frames ({float(video):.4f} s), audio slice {float(audio):.4f} s",
                culprits=(shot.shot_id,),
                frame=context.assembly.shot(shot.shot_id).span.first_frame,
                details={"video_frames": frames, "planned_frames": shot.frames},
            )


class FormatCheck:
    """A shot whose codec, profile, size, pixel format, rate or encoder settings differ from the edit's.

    Assembly re-encodes such a shot to the common parameters (the edit is fine); the value counts the
    differing parameters, so a producer sees which renders came out of a misconfigured worker.
    """

    name = "format"
    unit = "parameters"
    default_threshold = 0.0
    default_policy = CheckPolicy.WARN
    retakeable = True
    needs_pictures = False
    description = "resolution / fps / codec mismatch against the edit"

    def measure(self, context: CheckContext) -> Iterator[Measurement]:
        for shot in context.shots:
            assembled = context.assembly.shot(shot.shot_id)
            differences = assembled.format_differences
            shown = "; ".join(differences)
            yield Measurement(
                subject=Subject.shot(shot.shot_id),
                value=float(len(differences)),
                detail=f"differs in {shown} (re-encoded)" if differences else "matches the edit's stream parameters",
                culprits=(shot.shot_id,),
                frame=assembled.span.first_frame,
                details={"route": assembled.route.value},
            )
