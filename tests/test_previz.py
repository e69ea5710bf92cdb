"""previz, measured on the demo portraits: the mouth follows the syllables frame by frame, rests in silence,
the jaw drops, the eyes blink, the camera move is applied, and every shot has exactly its frames."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterable
from fractions import Fraction

import numpy as np
import pytest

from farm.avatar.base import RenderRequest, RenderResult
from farm.avatar.camera import render_camera_video
from farm.avatar.previz import CHUNK_FRAMES, NO_FACE_WARNING, PrevizModel, frame_loudness, plan_performance
from farm.avatar.registry import create_model
from farm.catalog import ModelCatalog
from farm.media.audio import decode_audio
from farm.media.faces import detect_faces
from farm.media.image import load_rgb
from farm.shotlist.types import CameraMove, CameraSpec
from tests.shotlists import DEMO_MEDIA, REPO

RATE = 16_000
WIDTH, HEIGHT = 240, 416
"""Half the demo portraits' size: with a static camera, output pixel = reference pixel / 2."""
STATIC = CameraSpec(CameraMove.STATIC)
SPEECH_FRAMES = 65
"""2.6 s of scene 1 at 25 fps: silence, a line, a pause, the start of the next line."""


class CollectingSink:
    def __init__(self) -> None:
        self.chunks: list[np.ndarray] = []

    def write(self, frames: np.ndarray) -> None:
        self.chunks.append(frames)

    @property
    def frames(self) -> np.ndarray:
        return np.concatenate(self.chunks)


@dataclasses.dataclass
class Rendered:
    frames: np.ndarray
    result: RenderResult
    chunks: list[np.ndarray]
    progress: list[tuple[float, str]]


def make_request(
    portrait: np.ndarray,
    audio: np.ndarray,
    frames: int,
    *,
    fps: Fraction = Fraction(25),
    seed: int = 7,
    camera: CameraSpec = STATIC,
    width: int = WIDTH,
    height: int = HEIGHT,
) -> RenderRequest:
    return RenderRequest(
        shot_id="test",
        reference_image=portrait,
        audio=audio,
        sample_rate=RATE,
        prompt="a man speaks",
        negative_prompt="",
        camera=camera,
        fps=fps,
        width=width,
        height=height,
        frames=frames,
        seed=seed,
        steps=1,
        text_guidance=0.0,
        audio_guidance=0.0,
    )


def render(model: PrevizModel, request: RenderRequest) -> Rendered:
    sink = CollectingSink()
    progress: list[tuple[float, str]] = []
    result = model.render(request, sink, lambda fraction, phase: progress.append((fraction, phase)))
    return Rendered(sink.frames, result, sink.chunks, progress)


def samples_for(frames: int, fps: Fraction) -> int:
    return round(Fraction(frames) / fps * RATE)


def frame_span(index: int, fps: Fraction) -> slice:
    """Samples whose time lies in frame ``index``'s span [index / fps, (index + 1) / fps)."""
    return slice(math.ceil(Fraction(index) * RATE / fps), math.ceil(Fraction(index + 1) * RATE / fps))


def syllables(frames: int, fps: Fraction, loud_frames: Iterable[int]) -> np.ndarray:
    """Silence with a voiced burst (a 140 Hz buzz with harmonics) filling exactly the given frames."""
    audio = np.zeros(samples_for(frames, fps), np.float32)
    for index in loud_frames:
        span = frame_span(index, fps)
        span = slice(span.start, min(span.stop, len(audio)))
        time = np.arange(span.start, span.stop) / RATE
        audio[span] = 0.25 * sum(np.sin(2 * np.pi * 140 * h * time) / h for h in (1, 2, 3, 4))
    return audio


def region(frames: np.ndarray, box: tuple[int, int, int, int]) -> np.ndarray:
    left, top, right, bottom = box
    return frames[:, top:bottom, left:right].astype(np.float64)


def change_from(frames: np.ndarray, box: tuple[int, int, int, int], rest: int) -> np.ndarray:
    """Mean absolute difference of ``box`` in every frame from frame ``rest``."""
    pixels = region(frames, box)
    return np.abs(pixels - pixels[rest]).mean(axis=(1, 2, 3))


def open_mouth_area(frames: np.ndarray, box: tuple[int, int, int, int]) -> np.ndarray:
    """Pixels of ``box`` darker than 80 in every channel: the open mouth's interior (head sway barely moves it)."""
    return (region(frames, box).max(axis=-1) < 80).sum(axis=(1, 2))


def vertical_shift(before: np.ndarray, after: np.ndarray, search: int = 14) -> int:
    """How many pixels the content of ``before`` moved down in ``after`` (best match of the middle rows)."""
    middle = before[search:-search]
    errors = [
        np.abs(after[search + shift : len(after) - search + shift] - middle).mean()
        for shift in range(-search, search + 1)
    ]
    return int(np.argmin(errors)) - search


@pytest.fixture(scope="module")
def model() -> PrevizModel:
    built = create_model(ModelCatalog(REPO / "models").get("previz"))
    built.load("cpu")
    assert isinstance(built, PrevizModel)
    return built


@pytest.fixture(scope="module")
def marcus() -> np.ndarray:
    return load_rgb(DEMO_MEDIA / "marcus.jpg")


@pytest.fixture(scope="module")
def marcus_landmarks(marcus: np.ndarray) -> np.ndarray:
    """The reference portrait's landmarks in output pixels (static camera: half size)."""
    return detect_faces(marcus)[0].landmarks / 2


@pytest.fixture(scope="module")
def speech() -> np.ndarray:
    track = decode_audio(DEMO_MEDIA / "sc01_dialogue.wav").astype(np.float32) / 32768
    return track[: samples_for(SPEECH_FRAMES, Fraction(25))]


@pytest.fixture(scope="module")
def talking(model: PrevizModel, marcus: np.ndarray, speech: np.ndarray) -> Rendered:
    return render(model, make_request(marcus, speech, SPEECH_FRAMES, seed=3))


def mouth_box(landmarks: np.ndarray) -> tuple[int, int, int, int]:
    """Lips, plus room below for the lower lip when the jaw drops."""
    mouth = landmarks[48:68]
    return (
        int(mouth[:, 0].min()),
        int(mouth[:, 1].min()) - 2,
        int(mouth[:, 0].max()) + 1,
        int(mouth[:, 1].max()) + 10,
    )


def silent_frames(audio: np.ndarray, frames: int, fps: Fraction) -> list[int]:
    """Frames whose samples, and their neighbours' samples, are all digital silence."""
    quiet = [not np.any(audio[frame_span(index, fps)]) for index in range(frames)]
    return [i for i in range(1, frames - 1) if quiet[i - 1] and quiet[i] and quiet[i + 1]]


def test_mouth_moves_during_speech_and_rests_in_silence(
    talking: Rendered, speech: np.ndarray, marcus_landmarks: np.ndarray
) -> None:
    fps = Fraction(25)
    box = mouth_box(marcus_landmarks)
    silent = silent_frames(speech, SPEECH_FRAMES, fps)
    loudness = frame_loudness(speech, RATE, fps, SPEECH_FRAMES)
    loud = np.argsort(loudness)[-SPEECH_FRAMES // 4 :]
    assert len(silent) >= 8  # the track's leading silence and the pause between lines

    change = change_from(talking.frames, box, rest=silent[0])
    pixels = region(talking.frames, box)
    steps = np.abs(np.diff(pixels, axis=0)).mean(axis=(1, 2, 3))  # steps[i]: frame i -> i + 1
    still = [steps[i] for i in silent if i + 1 in silent]
    speaking = [steps[i] for i in range(SPEECH_FRAMES - 1) if i not in silent and i + 1 not in silent]

    assert open_mouth_area(talking.frames, box)[loud].min() > 3 * open_mouth_area(talking.frames, box)[silent].max()
    assert change[loud].min() > 6.0, "every loud frame shows an open mouth"
    assert max(still) < 0.2 * np.median(speaking), "in silence the mouth only sways with the head"


@pytest.mark.parametrize("fps", [Fraction(25), Fraction(30000, 1001)])
def test_loud_syllables_open_the_mouth_on_their_own_frames(
    model: PrevizModel, marcus: np.ndarray, marcus_landmarks: np.ndarray, fps: Fraction
) -> None:
    frames, single_bursts, double_burst = 40, [8, 30], [18, 19]
    audio = syllables(frames, fps, [*single_bursts, *double_burst])

    rendered = render(model, make_request(marcus, audio, frames, fps=fps))
    opening = open_mouth_area(rendered.frames, mouth_box(marcus_landmarks))

    for burst in single_bursts:
        assert int(np.argmax(opening[burst - 3 : burst + 4])) == 3, f"peak of the burst on frame {burst}"
        assert opening[burst] > opening[burst - 1] + 20 and opening[burst] > opening[burst + 1] + 20
    assert set(np.argsort(opening[15:23])[-2:] + 15) == set(double_burst)
    at_rest = opening[0]
    far_from_bursts = [2, 3, 4, 13, 14, 24, 25, 26, 36, 37]
    assert np.abs(opening[far_from_bursts] - at_rest).max() <= 5, "closed between syllables"
    assert opening[single_bursts].min() > at_rest + 60


def test_loudness_is_measured_over_each_frames_own_samples() -> None:
    fps = Fraction(30000, 1001)
    audio = syllables(30, fps, [11, 12, 20])

    loud = np.flatnonzero(frame_loudness(audio, RATE, fps, 30) > 0)

    assert loud.tolist() == [11, 12, 20]


def test_jaw_drops_with_the_opening_and_the_nose_stays(talking: Rendered, marcus_landmarks: np.ndarray) -> None:
    speech_opening = change_from(talking.frames, mouth_box(marcus_landmarks), rest=2)
    widest = int(np.argmax(speech_opening))
    chin_x, chin_y = marcus_landmarks[8]
    lip_y = marcus_landmarks[57, 1]
    nose_x, nose_y = marcus_landmarks[33]

    def strip(frame: int, centre_x: float, top: float, bottom: float) -> np.ndarray:
        x = int(centre_x)
        return talking.frames[frame, int(top) : int(bottom), x - 12 : x + 12].astype(np.float64).mean(axis=2)

    chin_drop = vertical_shift(strip(2, chin_x, lip_y, chin_y + 20), strip(widest, chin_x, lip_y, chin_y + 20))
    nose_drop = vertical_shift(
        strip(2, nose_x, nose_y - 30, nose_y + 6), strip(widest, nose_x, nose_y - 30, nose_y + 6)
    )

    assert chin_drop >= 4, "the chin moves down with the open mouth"
    assert abs(nose_drop) <= 1, "the upper face only sways"


def test_eyes_close_in_a_blink(talking: Rendered, speech: np.ndarray, marcus_landmarks: np.ndarray) -> None:
    blink = plan_performance(speech, RATE, Fraction(25), SPEECH_FRAMES, seed=3).blink
    assert blink.max() > 0.95 and blink[0] == blink[-1] == 0, "seed 3 blinks once, well inside the first 2.6 s"
    eyes = marcus_landmarks[36:48]
    box = (int(eyes[:, 0].min()) - 2, int(eyes[:, 1].min()) - 4, int(eyes[:, 0].max()) + 3, int(eyes[:, 1].max()) + 3)

    pixels = region(talking.frames, box)
    steps = np.abs(np.diff(pixels, axis=0)).mean(axis=(1, 2, 3))  # steps[i]: frame i -> i + 1
    moving_lids = (blink[:-1] > 0) | (blink[1:] > 0)
    dark_eye = (pixels.max(axis=-1) < 50).sum(axis=(1, 2))  # iris and pupil
    before = int(np.argmax(blink > 0)) - 1

    assert steps[moving_lids].max() > 4 * steps[~moving_lids].max(), "the lids move only in the blink"
    assert dark_eye[blink > 0.95].max() < 0.6 * dark_eye[before], "the closed lids cover the irises"


def test_camera_move_is_applied_to_the_animated_portrait(
    model: PrevizModel, marcus: np.ndarray, speech: np.ndarray
) -> None:
    camera = CameraSpec(CameraMove.PUSH_IN, 0.6)
    frames = 30
    rendered = render(model, make_request(marcus, speech[: samples_for(frames, Fraction(25))], frames, camera=camera))
    still = np.stack(list(render_camera_video(marcus, camera, frames, WIDTH, HEIGHT, seed=7)))

    body = slice(int(HEIGHT * 0.8), HEIGHT)  # far below the head: only the camera moves it
    difference = np.abs(rendered.frames[:, body].astype(int) - still[:, body]).max()

    assert difference <= 2
    assert not np.array_equal(rendered.frames[0], rendered.frames[-1])


@pytest.mark.parametrize("fps", [Fraction(25), Fraction(24), Fraction(30000, 1001)])
@pytest.mark.parametrize("frames", [1, 13, 2 * CHUNK_FRAMES + 5])
def test_writes_exactly_the_requested_frames_in_bounded_chunks(
    model: PrevizModel, marcus: np.ndarray, fps: Fraction, frames: int
) -> None:
    width, height = 122, 206  # not multiples of the mesh cell or of 16
    audio = syllables(frames, fps, range(0, frames, 3))

    rendered = render(model, make_request(marcus, audio, frames, fps=fps, width=width, height=height))

    assert rendered.result.frames_written == frames
    assert rendered.frames.shape == (frames, height, width, 3)
    assert rendered.frames.dtype == np.uint8
    assert all(len(chunk) <= CHUNK_FRAMES for chunk in rendered.chunks)
    fractions = [fraction for fraction, _ in rendered.progress]
    assert fractions == sorted(fractions) and fractions[-1] == 1.0


def test_same_inputs_and_seed_render_identical_frames(
    model: PrevizModel, marcus: np.ndarray, speech: np.ndarray, talking: Rendered
) -> None:
    again = render(model, make_request(marcus, speech, SPEECH_FRAMES, seed=3))

    assert again.frames.tobytes() == talking.frames.tobytes()


def test_another_seed_moves_head_and_blinks_differently_but_speaks_the_same(
    model: PrevizModel, marcus: np.ndarray, speech: np.ndarray, talking: Rendered
) -> None:
    three = plan_performance(speech, RATE, Fraction(25), SPEECH_FRAMES, seed=3)
    four = plan_performance(speech, RATE, Fraction(25), SPEECH_FRAMES, seed=4)
    other = render(model, make_request(marcus, speech, SPEECH_FRAMES, seed=4))

    assert np.array_equal(three.mouth, four.mouth)
    assert not np.allclose(three.blink, four.blink)
    assert not np.allclose(three.head_x, four.head_x)
    assert not np.array_equal(other.frames, talking.frames)


def test_head_motion_is_small_and_smooth() -> None:
    fps = Fraction(25)
    performance = plan_performance(np.zeros(samples_for(250, fps), np.float32), RATE, fps, 250, seed=3)

    for curve, bound in ((performance.head_x, 0.05), (performance.head_y, 0.05), (performance.head_roll, 1.5)):
        assert np.abs(curve).max() <= bound
        assert np.abs(np.diff(curve)).max() < bound / 5, "no jumps from one frame to the next"
        assert np.ptp(curve) > bound / 10, "but it does move"


def landscape(width: int = 600, height: int = 900) -> np.ndarray:
    """Sky, hills and a field: structure for the camera to move over, and no face."""
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float64)
    horizon = height * 0.55 + 40 * np.sin(xx / 70) + 15 * np.sin(xx / 23)
    sky = np.stack([90 + 80 * yy / height, 140 + 60 * yy / height, 230 - 20 * yy / height], axis=-1)
    field = np.stack([60 + 30 * np.sin(yy / 9), 120 + 40 * np.sin(xx / 13), 50 + 0 * xx], axis=-1)
    return np.where((yy > horizon)[..., None], field, sky).clip(0, 255).astype(np.uint8)


def test_portrait_without_a_face_renders_the_camera_move_with_a_warning(model: PrevizModel) -> None:
    image = landscape()
    assert detect_faces(image, upsample=1) == []
    camera = CameraSpec(CameraMove.PAN_RIGHT, 0.8)
    frames = 20

    rendered = render(model, make_request(image, syllables(frames, Fraction(25), [5, 6]), frames, camera=camera))

    assert rendered.result.warnings == (NO_FACE_WARNING,)
    expected = np.stack(list(render_camera_video(image, camera, frames, WIDTH, HEIGHT, seed=7)))
    assert np.array_equal(rendered.frames, expected)


def test_last_frames_are_the_final_frames_written(model: PrevizModel, marcus: np.ndarray) -> None:
    keeps_three = PrevizModel(dataclasses.replace(model.manifest, continuation_frames=3))
    frames = CHUNK_FRAMES + 1  # the last chunk holds a single frame
    audio = syllables(frames, Fraction(25), [4])

    rendered = render(keeps_three, make_request(marcus, audio, frames))

    assert rendered.result.last_frames.shape == (3, HEIGHT, WIDTH, 3)
    assert np.array_equal(rendered.result.last_frames, rendered.frames[-3:])
