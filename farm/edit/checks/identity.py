"""Identity drift: the face of each shot against its person's anchor face, across the whole episode."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator

import numpy as np

from farm.edit.analysis import reference_identity
from farm.edit.checks.base import CheckContext, Measurement, Subject
from farm.edit.timeline import EditShot
from farm.media.faces import SAME_PERSON_DISTANCE, identity_distance
from farm.shotlist.types import CheckPolicy


class IdentityCheck:
    """Distance between a shot's face (dlib 128-d descriptor) and its person's anchor.

    The anchor is the reference portrait of the character whose id is the person's (its canonical
    look), so a render that drifts away from the reference is caught even when every shot drifts
    alike. A person without such a character is anchored on the medoid of its shots' faces (the one
    closest to all the others), so a single odd shot stands out.
    """

    name = "identity"
    unit = "distance"
    default_threshold = 0.5
    default_policy = CheckPolicy.RETAKE
    retakeable = True
    needs_pictures = True
    description = "face identity of each shot against its person (dlib face embedding distance)"

    def measure(self, context: CheckContext) -> Iterator[Measurement]:
        assert context.analysis is not None
        by_person: dict[str, list[EditShot]] = defaultdict(list)
        for shot in context.shots:
            by_person[shot.person].append(shot)
        for person, shots in by_person.items():
            faces = {shot.shot_id: context.analysis[shot.shot_id].identity for shot in shots}
            anchor, anchor_name = _anchor(person, shots, faces)
            for shot in shots:
                subject = Subject.person(person, shot.shot_id)
                face = faces[shot.shot_id]
                frame = context.assembly.shot(shot.shot_id).span.first_frame
                if face is None:
                    sampled = len(context.analysis[shot.shot_id].face_frames)
                    yield Measurement(subject, None, "", skip_reason=f"no face found in {sampled} sampled frames")
                    continue
                if anchor is None:
                    yield Measurement(subject, None, "", skip_reason=f"no face to compare {person} with")
                    continue
                distance = identity_distance(face, anchor)
                yield Measurement(
                    subject=subject,
                    value=distance,
                    detail=f"face distance {distance:.2f} to {anchor_name} (same person is < {SAME_PERSON_DISTANCE})",
                    culprits=(shot.shot_id,),
                    frame=frame,
                    details={"character": shot.character_id, "anchor": anchor_name},
                )


def _anchor(person: str, shots: list[EditShot], faces: dict[str, np.ndarray | None]) -> tuple[np.ndarray | None, str]:
    for shot in shots:
        if shot.character_id == person and shot.reference_image is not None:
            reference = reference_identity(shot.reference_image)
            if reference is not None:
                return reference, f"{person}'s reference portrait"
    found = [(shot_id, face) for shot_id, face in faces.items() if face is not None]
    if not found:
        return None, ""
    if len(found) == 1:
        return found[0][1], f"{found[0][0]}'s face"
    medoid = min(found, key=lambda item: sum(identity_distance(item[1], other) for _, other in found))
    return medoid[1], f"{medoid[0]}'s face (the most typical of {person}'s shots)"
