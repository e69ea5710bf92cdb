"""Two-shots rendered: each speaker's speech moves only their own region of the frame, in previz and in
what the diffusion model is given."""

from __future__ import annotations

from dataclasses import replace
from fractions import Fraction

import numpy as np
import pytest

from farm.avatar.base import RenderRequest, Speaker
from farm.avatar.previz import PrevizModel
from farm.avatar.two_shot import compose_reference, frame_speaker, pixel_box
from farm.avatar.wan_audio.adapter import WanAudioModel
from farm.catalog import ModelCatalog
from farm.media.faces import detect_faces
from farm.media.image import load_rgb
from farm.settings import REPO_ROOT
from farm.shotlist.types import LAYOUT_FACES, CameraMove, CameraSpec, TwoShotLayout
from tests.shotlists import DEMO_MEDIA
from tests.tiny_wan import speech

FPS = 25
FRAMES = 12
WIDTH, HEIGHT = 256, 160


class ListSink:
    def __init__(self) -> None:
        self.chunks: list[np.ndarray] = []

    def write(self, frames: np.ndarray) -> None:
        self.chunks.append(np.array(frames, copy=True))

    @property
    def frames(self) -> np.ndarray:
        return np.concatenate(self.chunks)


@pytest.fixture(scope="module")
def previz() -> PrevizModel:
    model = PrevizModel(ModelCatalog(REPO_ROOT / "models").get("previz"))
    model.load("cpu")
    return model


def voice(seed: int, loud: bool = True) -> np.ndarray:
    samples = speech(FRAMES, seed=seed, fps=FPS)
    return samples if loud else np.zeros_like(samples)


def two_shot(layout: TwoShotLayout, first: np.ndarray, second: np.ndarray) -> RenderRequest:
    regions = LAYOUT_FACES[layout]
    speakers = (
        Speaker("marcus", load_rgb(DEMO_MEDIA / "marcus.jpg"), first, regions[0]),
        Speaker("walter", load_rgb(DEMO_MEDIA / "walter.jpg"), second, regions[1]),
    )
    return RenderRequest(
        shot_id="sc03_010",
        reference_image=speakers[0].reference_image,
        audio=first + second,
        sample_rate=16_000,
        prompt="two men talk",
        negative_prompt="",
        camera=CameraSpec(CameraMove.STATIC),
        fps=Fraction(FPS),
        width=WIDTH,
        height=HEIGHT,
        frames=FRAMES,
        seed=3,
        steps=1,
        text_guidance=1.0,
        audio_guidance=1.0,
        speakers=speakers,
        layout=layout.value,
    )


def rendered(model: PrevizModel, request: RenderRequest) -> tuple[np.ndarray, tuple[str, ...]]:
    sink = ListSink()
    result = model.render(request, sink, lambda fraction, phase: None)
    assert result.frames_written == FRAMES == len(sink.frames)
    return sink.frames, result.warnings


def changed_box(a: np.ndarray, b: np.ndarray) -> tuple[int, int, int, int] | None:
    """(left, top, right, bottom) of the pixels that differ in any frame; None when none do."""
    differs = np.any(a != b, axis=(0, 3))
    if not differs.any():
        return None
    rows, columns = np.flatnonzero(differs.any(axis=1)), np.flatnonzero(differs.any(axis=0))
    return int(columns[0]), int(rows[0]), int(columns[-1]) + 1, int(rows[-1]) + 1


@pytest.mark.parametrize("layout", list(TwoShotLayout))
def test_in_previz_each_speakers_speech_moves_only_their_own_region(previz: PrevizModel, layout: TwoShotLayout) -> None:
    both, warnings = rendered(previz, two_shot(layout, voice(1), voice(2)))
    first_quiet, _ = rendered(previz, two_shot(layout, voice(1, loud=False), voice(2)))
    second_quiet, _ = rendered(previz, two_shot(layout, voice(1), voice(2, loud=False)))

    assert not any("no face" in warning for warning in warnings), warnings
    for quiet, index in ((first_quiet, 0), (second_quiet, 1)):
        box = pixel_box(LAYOUT_FACES[layout][index], WIDTH, HEIGHT)
        moved = changed_box(both, quiet)
        assert moved is not None, f"speaker {index}'s speech moved nothing"
        left, top, right, bottom = moved
        assert box.left <= left and box.top <= top and right <= box.right and bottom <= box.bottom, (moved, box)


def test_each_half_is_framed_on_its_own_speakers_face(previz: PrevizModel) -> None:
    frames, _ = rendered(previz, two_shot(TwoShotLayout.SIDE_BY_SIDE, voice(1), voice(2)))
    first = frames[0]

    for index in range(2):
        box = pixel_box(LAYOUT_FACES[TwoShotLayout.SIDE_BY_SIDE][index], WIDTH, HEIGHT)
        faces = detect_faces(np.ascontiguousarray(first[box.top : box.bottom, box.left : box.right]), upsample=1)
        assert len(faces) == 1, f"half {index}"
        centre = (faces[0].left + faces[0].right) / 2
        assert box.width * 0.25 < centre < box.width * 0.75


def test_the_diffusion_model_gets_one_reference_with_both_faces_and_a_track_per_region() -> None:
    request = two_shot(TwoShotLayout.SIDE_BY_SIDE, voice(1), voice(2))
    model = WanAudioModel(ModelCatalog(REPO_ROOT / "models").get("previz"))

    reference, audio, regions, _ = model._people(request)
    composed, _ = compose_reference(request.speakers, request.layout, WIDTH, HEIGHT)

    assert reference.shape == (HEIGHT, WIDTH, 3)
    np.testing.assert_array_equal(reference, composed)
    assert regions == [speaker.region for speaker in request.speakers]
    assert [id(track) for track in audio] == [id(speaker.audio) for speaker in request.speakers]
    for index, speaker in enumerate(request.speakers):
        box = pixel_box(speaker.region, WIDTH, HEIGHT)
        tile, _, _ = frame_speaker(speaker, box)
        np.testing.assert_array_equal(reference[box.top : box.bottom, box.left : box.right], tile, f"speaker {index}")
    single = replace(request, speakers=(), layout="")
    assert model._people(single) == (single.reference_image, single.audio, None, ())
