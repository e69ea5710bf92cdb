"""Face detection and identity on the two real portraits: one face each, and two different people."""

from __future__ import annotations

from farm.media.faces import SAME_PERSON_DISTANCE, detect_faces, face_descriptor, identity_distance
from farm.media.image import load_rgb
from tests.shotlists import DEMO_MEDIA


def test_each_portrait_has_one_face_with_landmarks_on_it() -> None:
    for name in ("marcus.jpg", "walter.jpg"):
        image = load_rgb(DEMO_MEDIA / name)
        faces = detect_faces(image)

        assert len(faces) == 1, name
        face = faces[0]
        mouth = face.landmarks[48:68]
        assert face.left <= mouth[:, 0].min() and mouth[:, 0].max() <= face.right
        assert face.top < mouth[:, 1].mean() < face.bottom


def test_identity_tells_the_two_people_apart_and_recognises_a_flipped_copy() -> None:
    marcus = load_rgb(DEMO_MEDIA / "marcus.jpg")
    walter = load_rgb(DEMO_MEDIA / "walter.jpg")
    flipped = marcus[:, ::-1]
    marcus_id = face_descriptor(marcus, detect_faces(marcus)[0])
    walter_id = face_descriptor(walter, detect_faces(walter)[0])
    flipped_id = face_descriptor(flipped, detect_faces(flipped)[0])

    assert identity_distance(marcus_id, flipped_id) < SAME_PERSON_DISTANCE
    assert identity_distance(marcus_id, walter_id) > SAME_PERSON_DISTANCE
