"""Picture checks: colour/exposure jumps at a cut, seams inside a shot, black and frozen frames."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

from farm.edit.analysis import EDGE_SECONDS, ShotAnalysis
from farm.edit.checks.base import CheckContext, Measurement, Subject
from farm.edit.timeline import EditShot
from farm.shotlist.types import CheckPolicy

SEAM_WINDOW_FRAMES = 12
"""A frame's motion is compared with the median motion this many frames either side of it."""
SEAM_MOTION_FLOOR = 1.5
"""Typical motion never counts as less than this (0-255 luma): a still shot's compression noise is
not a baseline a talking mouth should be measured against."""
BLACK_MEAN_LUMA = 12.0
BLACK_LUMA_STD = 6.0
FROZEN_CHANGED_FRACTION = 0.001
"""A frame in which fewer than this fraction of pixels changed is a repeat of the one before. A
talking mouth changes ~0.3 % of a 480x832 frame, a blink more; encoding noise changes none."""


def _analysis(context: CheckContext, shot: EditShot) -> ShotAnalysis:
    assert context.analysis is not None, "picture checks need the edit's analysis"
    return context.analysis[shot.shot_id]


class ColourCheck:
    """Colour or exposure jump between two shots of one person in one scene (the same setup).

    Shots of different people in a scene legitimately look different (another angle, another
    background), so each shot is compared with the previous shot of the same person in the same scene:
    at a direct cut that is the shot before it. The value is the larger of the CIEDE2000 difference of
    the mean Lab colours of the two sides and the difference of their L* standard deviations (contrast).
    """

    name = "colour"
    unit = "dE00"
    default_threshold = 6.0
    default_policy = CheckPolicy.WARN
    retakeable = True
    needs_pictures = True
    description = "colour/exposure jump between shots of one person within a scene (Lab mean/std)"

    def measure(self, context: CheckContext) -> Iterator[Measurement]:
        from skimage.color import deltaE_ciede2000

        last_of: dict[tuple[str, str], EditShot] = {}
        for shot in context.shots:
            key = (shot.scene_id, shot.person)
            before = last_of.get(key)
            last_of[key] = shot
            if before is None:
                continue
            tail, head = _analysis(context, before).tail, _analysis(context, shot).head
            colour = float(deltaE_ciede2000(np.array(tail.mean), np.array(head.mean)))
            contrast = abs(tail.lightness_std - head.lightness_std)
            delta = [h - t for h, t in zip(head.mean, tail.mean, strict=True)]
            yield Measurement(
                subject=Subject.cut(before.shot_id, shot.shot_id),
                value=max(colour, contrast),
                detail=(
                    f"dE00 {colour:.1f} between the mean colours of the last and first {EDGE_SECONDS:g} s "
                    f"(dL* {delta[0]:+.1f}, da* {delta[1]:+.1f}, db* {delta[2]:+.1f}), "
                    f"L* contrast {tail.lightness_std:.1f} vs {head.lightness_std:.1f}"
                ),
                culprits=(shot.shot_id,),
                frame=context.cut_frame(shot),
                details={"de00": round(colour, 3), "dL": delta[0], "da": delta[1], "db": delta[2], "dstdL": contrast},
            )


class WindowSeamCheck:
    """A spike in frame-to-frame difference inside a shot: where two render windows were joined badly.

    The value is the largest ratio of a frame's motion to the median motion around it.
    """

    name = "window_seam"
    unit = "x median motion"
    default_threshold = 4.0
    default_policy = CheckPolicy.RETAKE
    retakeable = True
    needs_pictures = True
    description = "frame-difference spike inside a shot (a seam between render windows)"

    def measure(self, context: CheckContext) -> Iterator[Measurement]:
        for shot in context.shots:
            motion = _analysis(context, shot).motion
            if len(motion) < 3:
                yield Measurement(Subject.shot(shot.shot_id), None, "", skip_reason="fewer than 3 frames")
                continue
            ratios = np.zeros(len(motion))
            for index in range(1, len(motion)):
                around = np.concatenate(
                    [
                        motion[max(1, index - SEAM_WINDOW_FRAMES) : index],
                        motion[index + 1 : index + 1 + SEAM_WINDOW_FRAMES],
                    ]
                )
                typical = max(float(np.median(around)) if len(around) else 0.0, SEAM_MOTION_FLOOR)
                ratios[index] = motion[index] / typical
            worst = int(np.argmax(ratios))
            yield Measurement(
                subject=Subject.shot(shot.shot_id),
                value=float(ratios[worst]),
                detail=f"frame {worst} differs {motion[worst]:.1f} levels from the one before, "
                f"{ratios[worst]:.1f}x the motion around it",
                culprits=(shot.shot_id,),
                frame=context.assembly.shot(shot.shot_id).span.first_frame + worst,
                details={"shot_frame": worst, "difference": float(motion[worst])},
            )


class BlackFramesCheck:
    """Frames that are (almost) uniformly black: a render that produced nothing."""

    name = "black_frames"
    unit = "frames"
    default_threshold = 0.0
    default_policy = CheckPolicy.RETAKE
    retakeable = True
    needs_pictures = True
    description = "black frames inside a shot"

    def measure(self, context: CheckContext) -> Iterator[Measurement]:
        for shot in context.shots:
            analysis = _analysis(context, shot)
            black = np.flatnonzero((analysis.luma < BLACK_MEAN_LUMA) & (analysis.luma_std < BLACK_LUMA_STD))
            first = int(black[0]) if len(black) else None
            yield Measurement(
                subject=Subject.shot(shot.shot_id),
                value=float(len(black)),
                detail=f"{len(black)} black frame(s)" + (f", the first at frame {first}" if first is not None else ""),
                culprits=(shot.shot_id,),
                frame=None if first is None else context.assembly.shot(shot.shot_id).span.first_frame + first,
            )


class FrozenFramesCheck:
    """The longest run of identical frames: a render that stalled or a stuck decoder."""

    name = "frozen_frames"
    unit = "s"
    default_threshold = 2.0
    default_policy = CheckPolicy.WARN
    retakeable = True
    needs_pictures = True
    description = "frozen (identical) frames inside a shot"

    def measure(self, context: CheckContext) -> Iterator[Measurement]:
        for shot in context.shots:
            still = _analysis(context, shot).changed[1:] < FROZEN_CHANGED_FRACTION
            longest, start, run = 0, 0, 0
            for index, is_still in enumerate(still, start=1):
                run = run + 1 if is_still else 0
                if run > longest:
                    longest, start = run, index - run
            seconds = float(longest / shot.fps) if longest else 0.0
            yield Measurement(
                subject=Subject.shot(shot.shot_id),
                value=seconds,
                detail=f"longest frozen run {longest + 1 if longest else 0} frames ({seconds:.2f} s)"
                + (f" from frame {start}" if longest else ""),
                culprits=(shot.shot_id,),
                frame=context.assembly.shot(shot.shot_id).span.first_frame + start if longest else None,
            )
