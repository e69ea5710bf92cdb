"""Identity drift: the face of each shot against its person's anchor face, across the whole episode."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from farm.edit.checks.base import CheckContext, Measurement, Subject
from farm.edit.timeline import EditShot
from farm.media.faces import SAME_PERSON_DISTANCE, identity_distance, portrait_identity
from farm.paths import display_path
from farm.shotlist.types import CheckPolicy


@dataclass(frozen=True)
class Anchor:
    """The face a person's shots are compared with."""

    face: np.ndarray
    name: str
    """In words: "marcus's reference portrait", "sc01_010's face (...)"."""
    portrait: Path | None = None
    """The reference portrait it was taken from, if it was."""


class IdentityCheck:
    """Distance between a shot's face (dlib 128-d descriptor) and its person's anchor.

    The anchor is the reference portrait of the character whose id is the person's (its canonical
    look), so a render that drifts away from the reference is caught even when every shot drifts
    alike. A person without such a character is anchored on the medoid of its shots' faces (the one
    closest to all the others), so a single odd shot stands out.

    A shot in which no face is found is not passed over: it warns (or fails, under ``unmeasured:
    fail``), since nobody checked who it shows. A drifted shot whose own reference portrait is already
    another face than the anchor asks for no retake: a new seed renders the same wrong face, and the
    finding says to fix the portrait instead.
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
        faces: dict[tuple[str, str], np.ndarray | None] = {}
        for look in (view for shot in context.shots for view in person_views(shot)):
            by_person[look.person].append(look)
            analysis = context.analysis[look.shot_id]
            faces[look.shot_id, look.character_id] = (
                analysis.identity_of(look.character_id) if len(look.speakers) else analysis.identity
            )
        for person, shots in by_person.items():
            anchor = _anchor(person, shots, {shot.shot_id: faces[shot.shot_id, shot.character_id] for shot in shots})
            for shot in shots:
                subject = Subject.person(person, shot.shot_id)
                face = faces[shot.shot_id, shot.character_id]
                frame = context.assembly.shot(shot.shot_id).span.first_frame
                if face is None or anchor is None:
                    sampled = len(context.analysis[shot.shot_id].face_frames)
                    yield Measurement(
                        subject,
                        None,
                        "",
                        culprits=(shot.shot_id,),
                        frame=frame,
                        unmeasured=f"no face found in {sampled} sampled frames, so who it shows is unchecked; "
                        "look at the shot, and at its portrait's framing",
                        details={"character": shot.character_id},
                    )
                    continue
                distance = identity_distance(face, anchor.face)
                wrong_portrait, portrait_distance = _wrong_portrait(shot, anchor)
                details: dict[str, float | str] = {"character": shot.character_id, "anchor": anchor.name}
                if portrait_distance is not None:
                    details["portrait_distance"] = round(portrait_distance, 4)
                yield Measurement(
                    subject=subject,
                    value=distance,
                    detail=f"face distance {distance:.2f} to {anchor.name} (same person is < {SAME_PERSON_DISTANCE})",
                    culprits=(shot.shot_id,),
                    frame=frame,
                    unfixable=wrong_portrait,
                    details=details,
                )


def person_views(shot: EditShot) -> list[EditShot]:
    """The shot as each person in it: itself for one character; a two-shot once per speaker, with that
    speaker's character, person and portrait (its ``speakers`` kept, so its face is read from the
    speaker's own region). What a per-person check (identity, lip sync) iterates over."""
    if not shot.speakers:
        return [shot]
    return [
        replace(
            shot,
            character_id=speaker.character_id,
            person_id=speaker.person_id,
            reference_image=speaker.reference_image,
        )
        for speaker in shot.speakers
    ]


def _anchor(person: str, shots: list[EditShot], faces: dict[str, np.ndarray | None]) -> Anchor | None:
    for shot in shots:
        if shot.character_id == person and shot.reference_image is not None:
            reference = portrait_identity(shot.reference_image)
            if reference is not None:
                return Anchor(reference, f"{person}'s reference portrait", shot.reference_image)
    found = [(shot_id, face) for shot_id, face in faces.items() if face is not None]
    if not found:
        return None
    if len(found) == 1:
        return Anchor(found[0][1], f"{found[0][0]}'s face")
    medoid = min(found, key=lambda item: sum(identity_distance(item[1], other) for _, other in found))
    return Anchor(medoid[1], f"{medoid[0]}'s face (the most typical of {person}'s shots)")


def _wrong_portrait(shot: EditShot, anchor: Anchor) -> tuple[str, float | None]:
    """Why a re-render cannot fix ``shot``'s identity when its own portrait is another person, and the
    portrait's distance to the anchor ('' and None when it has no portrait, or is the anchor's)."""
    if shot.reference_image is None or shot.reference_image == anchor.portrait:
        return "", None
    portrait = portrait_identity(shot.reference_image)
    if portrait is None:
        return "", None
    distance = identity_distance(portrait, anchor.face)
    if distance < SAME_PERSON_DISTANCE:
        return "", distance
    shown = display_path(shot.reference_image)
    return (
        f"its reference portrait {shown} is itself another face ({distance:.2f} from {anchor.name}), and a "
        f"re-render cannot fix a wrong portrait: fix characters.{shot.character_id}.image, then render again",
        distance,
    )
