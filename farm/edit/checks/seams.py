"""Seam checks: colour and identity across each seam of a long take, where one segment meets the next.

A take longer than its model's window is rendered in segments (``farm.engine.takes``); the seams are
where a chain of continuations can jump. The cut checks compare shots; these compare the two sides of
every seam inside a shot (``EditShot.seams``), the frames a lip-sync check can read too.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

from farm.edit.analysis import EDGE_SECONDS, SeamAnalysis
from farm.edit.checks.base import CheckContext, Measurement, Subject, SubjectKind
from farm.edit.timeline import EditShot
from farm.media.faces import identity_distance
from farm.shotlist.types import CheckPolicy


def seam_subject(shot: EditShot, seam: SeamAnalysis) -> Subject:
    return Subject(SubjectKind.SHOT, (shot.shot_id,), f"seam at frame {seam.frame} of {shot.shot_id}")


def _seams(context: CheckContext) -> Iterator[tuple[EditShot, SeamAnalysis, int]]:
    """Every seam of every shot, with its frame on the edit's timeline."""
    assert context.analysis is not None, "seam checks need the edit's analysis"
    for shot in context.shots:
        if not shot.seams:
            continue
        first = context.assembly.shot(shot.shot_id).span.first_frame
        for seam in context.analysis[shot.shot_id].seams:
            yield shot, seam, first + seam.frame


class SeamColourCheck:
    """Colour or exposure jump across a seam: the larger of the CIEDE2000 difference of the mean Lab
    colours of the two sides and the difference of their L* spreads. Tighter than at a cut: inside a
    take nothing about the setup changes."""

    name = "seam_colour"
    unit = "dE00"
    default_threshold = 4.0
    default_policy = CheckPolicy.WARN
    retakeable = True
    needs_pictures = True
    description = "colour/exposure jump across a seam between segments of a long take (Lab mean/std)"

    def measure(self, context: CheckContext) -> Iterator[Measurement]:
        from skimage.color import deltaE_ciede2000

        for shot, seam, frame in _seams(context):
            colour = float(deltaE_ciede2000(np.array(seam.before.mean), np.array(seam.after.mean)))
            contrast = abs(seam.before.lightness_std - seam.after.lightness_std)
            yield Measurement(
                subject=seam_subject(shot, seam),
                value=max(colour, contrast),
                detail=f"dE00 {colour:.1f} between the {EDGE_SECONDS:g} s either side, "
                f"L* contrast {seam.before.lightness_std:.1f} vs {seam.after.lightness_std:.1f}",
                culprits=(shot.shot_id,),
                frame=frame,
                details={"shot_frame": seam.frame, "de00": round(colour, 3), "dstdL": contrast},
            )


class SeamIdentityCheck:
    """Face identity jump across a seam: the descriptor distance between the last frame of one segment
    and the first of the next (the same person a frame apart is far closer than the identity check's
    bound). A seam without a face on both sides is unmeasured, which warns."""

    name = "seam_identity"
    unit = "distance"
    default_threshold = 0.35
    default_policy = CheckPolicy.WARN
    retakeable = True
    needs_pictures = True
    description = "face identity jump across a seam between segments of a long take"

    def measure(self, context: CheckContext) -> Iterator[Measurement]:
        for shot, seam, frame in _seams(context):
            subject = seam_subject(shot, seam)
            if seam.face_before is None or seam.face_after is None:
                missing = "before" if seam.face_before is None else "after"
                yield Measurement(
                    subject,
                    None,
                    "",
                    culprits=(shot.shot_id,),
                    frame=frame,
                    unmeasured=f"no face found in the frame {missing} the seam",
                )
                continue
            distance = identity_distance(seam.face_before, seam.face_after)
            yield Measurement(
                subject=subject,
                value=distance,
                detail=f"face distance {distance:.2f} between the frames either side",
                culprits=(shot.shot_id,),
                frame=frame,
                details={"shot_frame": seam.frame},
            )
