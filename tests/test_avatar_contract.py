"""The AvatarModel contract, held against every adapter: a new adapter adds one AdapterCase line to CASES.

What the engine relies on, whatever the model: exactly the requested frames reach the sink, in uint8
chunks; the returned last frames are the tail of what was written (the next shot continues from them);
progress only rises and ends at 1; a request and seed always give the same frames; and a request the
model cannot honour (a size off the manifest's multiple, audio at another rate, no frames) is refused
before any work, as a non-retryable RenderError that names the shot. And its ``pixel_inputs`` are
honest: cache keys are built from them, so changing an input it does not declare must leave its frames
byte-identical, and changing one it declares changes them.

Each case builds a real, small model through the registry, from the manifest a studio would use: the
repo's models/previz.yaml, the repo's models/tiny-avatar.yaml over a tiny random pipeline saved to a
temporary folder, and the engine tests' PatternModel. Shots are 14 frames (more than a chunk of previz
and PatternModel, and not 4n + 1, so wan_audio trims its padding) at each model's smallest quick size.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import dataclass, replace
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest

from farm.avatar.base import (
    RENDER_INPUTS,
    AvatarModel,
    Continuation,
    RenderRequest,
    RenderResult,
    Speaker,
    pixel_inputs_of,
)
from farm.avatar.registry import adapter_class, create_model
from farm.catalog import ModelManifest, load_manifest
from farm.errors import RenderError
from farm.media.audio import MODEL_SAMPLE_RATE
from farm.media.framing import Crop, Framing
from farm.media.image import load_rgb
from farm.shotlist.types import CameraMove, CameraSpec
from tests.engine_models import write_manifest
from tests.shotlists import DEMO_MEDIA, REPO
from tests.tiny_wan import saved_tiny_model, speech

SHOT = "sc01_010"
FRAMES = 14
FPS = Fraction(25)
SEED = 7


def repo_manifest(name: str) -> Callable[[Path], ModelManifest]:
    """A model that needs no weights: its manifest in the repo's models/, as shipped."""
    return lambda _folder: load_manifest(REPO / "models" / f"{name}.yaml")


def tiny_avatar_manifest(folder: Path) -> ModelManifest:
    """models/tiny-avatar.yaml, its ``${FARM_WEIGHTS_DIR}`` pointing at a tiny random pipeline saved in ``folder``."""
    saved_tiny_model(folder / "tiny-avatar")
    return load_manifest(REPO / "models" / "tiny-avatar.yaml", weights_dir=folder)


def pattern_manifest(folder: Path) -> ModelManifest:
    return load_manifest(write_manifest(folder, "pattern", gpus=0))


@dataclass(frozen=True)
class AdapterCase:
    """One adapter under the contract: where its manifest comes from and the shot size it is tested at."""

    name: str
    manifest: Callable[[Path], ModelManifest]
    """Builds the manifest (and any weights) inside the temporary folder it is given."""
    width: int
    height: int
    uses_seed: bool = True
    """False for a model that is seed-independent by design: then another seed must give the same frames."""


CASES = [
    AdapterCase("previz", repo_manifest("previz"), width=48, height=64),  # smallest size dlib finds the face at
    AdapterCase("tiny-avatar", tiny_avatar_manifest, width=32, height=32),  # at 16x16 the prompt rounds away
    AdapterCase("pattern", pattern_manifest, width=16, height=16),
]
"""Every adapter in this list uses its seed; none is seed-independent by design."""


class ListSink:
    def __init__(self) -> None:
        self.chunks: list[np.ndarray] = []

    def write(self, frames: np.ndarray) -> None:
        self.chunks.append(np.array(frames, copy=True))  # a model may reuse its buffer after write returns

    @property
    def frames(self) -> np.ndarray:
        return np.concatenate(self.chunks)

    @property
    def count(self) -> int:
        return sum(len(chunk) for chunk in self.chunks)


@dataclass
class Rendered:
    result: RenderResult
    sink: ListSink
    progress: list[tuple[float, str]]


@dataclass
class Loaded:
    case: AdapterCase
    model: AvatarModel
    manifest: ModelManifest
    portrait: np.ndarray

    def request(self, **changes: object) -> RenderRequest:
        fields: dict[str, object] = dict(
            shot_id=SHOT,
            reference_image=self.portrait,
            audio=speech(FRAMES, fps=int(FPS)),
            sample_rate=MODEL_SAMPLE_RATE,
            prompt="a man speaks calmly in an office",
            negative_prompt="blurry",
            camera=CameraSpec(CameraMove.STATIC),
            fps=FPS,
            width=self.case.width,
            height=self.case.height,
            frames=FRAMES,
            seed=SEED,
            steps=self.manifest.defaults.steps,
            text_guidance=self.manifest.defaults.text_guidance,
            audio_guidance=self.manifest.defaults.audio_guidance,
        )
        fields.update(changes)
        return RenderRequest(**fields)  # type: ignore[arg-type]

    def variant(self, name: str, rendered: Rendered) -> RenderRequest:
        """The default request with input ``name`` changed to another plausible value."""
        base = self.request()
        if name == "fps":  # the same frames at another rate, with audio to match
            return replace(base, fps=Fraction(24), audio=speech(FRAMES, fps=24))
        if name == "continuation":
            return replace(base, continuation=Continuation(255 - rendered.result.last_frames))
        if name == "speakers":  # a two-shot: the portrait beside another, each speaking their own track
            other = load_rgb(DEMO_MEDIA / "walter.jpg")
            speakers = (
                Speaker("marcus", self.portrait, speech(FRAMES, fps=int(FPS)), (0.0, 0.0, 0.5, 1.0)),
                Speaker("walter", other, speech(FRAMES, seed=5, fps=int(FPS)), (0.5, 0.0, 1.0, 1.0)),
            )
            return replace(base, speakers=speakers, layout="side_by_side")
        changed: dict[str, object] = {
            "reference_image": load_rgb(DEMO_MEDIA / "walter.jpg"),
            "audio": speech(FRAMES, seed=5, fps=int(FPS)),
            "prompt": "a woman laughs on a beach at noon",
            "negative_prompt": "sharp, vivid colours",
            "camera": CameraSpec(CameraMove.PUSH_IN, 0.6),
            "seed": SEED + 1,
            "steps": base.steps + 1,
            "text_guidance": base.text_guidance + 2.0,
            "audio_guidance": base.audio_guidance + 2.0,
            "framing": Framing(Crop(0, 0, 240, 416), 2.0, (), Crop(60, 100, 120, 120)),
        }
        return replace(base, **{name: changed[name]})  # type: ignore[arg-type]

    def render(self, request: RenderRequest) -> Rendered:
        sink, progress = ListSink(), []
        result = self.model.render(request, sink, lambda fraction, phase: progress.append((fraction, phase)))
        return Rendered(result, sink, progress)


@pytest.fixture(scope="module", params=CASES, ids=[case.name for case in CASES])
def loaded(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Loaded:
    case: AdapterCase = request.param
    manifest = case.manifest(tmp_path_factory.mktemp(case.name))
    model = create_model(manifest)
    model.load("cpu")
    return Loaded(case, model, manifest, load_rgb(DEMO_MEDIA / "marcus.jpg"))


@pytest.fixture(scope="module")
def rendered(loaded: Loaded) -> Rendered:
    """The default shot, rendered once per adapter and shared by the checks that only read it."""
    return loaded.render(loaded.request())


def test_writes_exactly_the_requested_frames_as_uint8_chunks(loaded: Loaded, rendered: Rendered) -> None:
    shape = (loaded.case.height, loaded.case.width, 3)

    assert rendered.sink.count == FRAMES
    assert rendered.result.frames_written == FRAMES
    for chunk in rendered.sink.chunks:
        assert chunk.dtype == np.uint8 and chunk.ndim == 4 and chunk.shape[1:] == shape and len(chunk) > 0


def test_last_frames_are_the_tail_of_what_was_written(loaded: Loaded, rendered: Rendered) -> None:
    keep = loaded.manifest.continuation_frames
    last = rendered.result.last_frames

    assert 0 < keep < FRAMES  # otherwise "the tail" would be all or nothing and prove little
    assert last.dtype == np.uint8
    assert last.shape == (keep, loaded.case.height, loaded.case.width, 3)
    np.testing.assert_array_equal(last, rendered.sink.frames[-keep:])


def test_progress_only_rises_and_ends_at_one(rendered: Rendered) -> None:
    fractions = [fraction for fraction, _ in rendered.progress]

    assert fractions, "no progress was reported"
    assert all(0.0 <= fraction <= 1.0 for fraction in fractions)
    assert all(later >= earlier for earlier, later in itertools.pairwise(fractions))
    assert fractions[-1] == 1.0
    assert all(isinstance(phase, str) and phase for _, phase in rendered.progress)


def test_the_same_request_and_seed_render_identical_frames(loaded: Loaded, rendered: Rendered) -> None:
    again = loaded.render(loaded.request())

    assert again.sink.frames.tobytes() == rendered.sink.frames.tobytes()


def test_another_seed_renders_other_frames_unless_the_model_ignores_seeds(loaded: Loaded, rendered: Rendered) -> None:
    other = loaded.render(loaded.request(seed=SEED + 1))

    assert other.sink.count == FRAMES
    differs = not np.array_equal(other.sink.frames, rendered.sink.frames)
    assert differs == loaded.case.uses_seed


def bad_sizes(width: int, height: int, multiple: int) -> dict[str, tuple[int, int]]:
    """Sizes each model must refuse: one off its multiple on either side (when it has one), and zero."""
    sizes = {"zero width": (0, height), "zero height": (width, 0)}
    if multiple > 1:
        sizes |= {"odd width": (width + 1, height), "odd height": (width, height + 1)}
    return sizes


@pytest.mark.parametrize("which", ["odd width", "odd height", "zero width", "zero height"])
def test_a_size_off_the_manifest_multiple_is_refused_naming_the_shot(loaded: Loaded, which: str) -> None:
    multiple = loaded.manifest.size_multiple
    sizes = bad_sizes(loaded.case.width, loaded.case.height, multiple)
    if which not in sizes:
        pytest.skip(f"{loaded.case.name} takes any size (size_multiple {multiple})")
    width, height = sizes[which]
    dimension, size = ("width", width) if width != loaded.case.width else ("height", height)
    sink = ListSink()

    with pytest.raises(RenderError) as caught:
        loaded.model.render(loaded.request(width=width, height=height), sink, lambda *_: None)

    message = str(caught.value)
    assert f"shot {SHOT}:" in message
    assert f"{dimension} {size} " in message and f"multiple of {multiple}" in message
    assert loaded.manifest.name in message
    assert not caught.value.retryable  # a bad input fails the same way on every node
    assert sink.count == 0


@pytest.mark.parametrize("rate", [MODEL_SAMPLE_RATE // 2, 44_100])
def test_audio_at_another_sample_rate_is_refused_naming_the_shot(loaded: Loaded, rate: int) -> None:
    audio = np.zeros(int(FRAMES / FPS * rate), np.float32)
    sink = ListSink()

    with pytest.raises(RenderError) as caught:
        loaded.model.render(loaded.request(audio=audio, sample_rate=rate), sink, lambda *_: None)

    message = str(caught.value)
    assert f"shot {SHOT}:" in message
    assert f"{rate} Hz" in message and f"{MODEL_SAMPLE_RATE} Hz" in message
    assert not caught.value.retryable
    assert sink.count == 0


def test_a_shot_without_frames_is_refused_naming_the_shot(loaded: Loaded) -> None:
    request = replace(loaded.request(), frames=0, audio=np.zeros(0, np.float32))

    with pytest.raises(RenderError, match=rf"shot {SHOT}: nothing to render"):
        loaded.model.render(request, ListSink(), lambda *_: None)


def test_code_version_is_a_non_empty_string_on_the_class(loaded: Loaded) -> None:
    """Planning reads code_version from the adapter class, without building a model: it goes into cache keys."""
    code_version = adapter_class(loaded.manifest.adapter).code_version

    assert isinstance(code_version, str) and code_version.strip()
    assert type(loaded.model).code_version == code_version


SHAPE_INPUTS = frozenset({"width", "height", "frames"})
"""Inputs that change the frames' shape or count: every model reads them (their keys always hold them)."""


def test_the_declared_pixel_inputs_are_request_inputs_and_include_the_shape(loaded: Loaded) -> None:
    declared = pixel_inputs_of(adapter_class(loaded.manifest.adapter))

    assert declared <= RENDER_INPUTS
    assert declared >= SHAPE_INPUTS


@pytest.mark.parametrize("name", sorted(RENDER_INPUTS - SHAPE_INPUTS))
def test_an_input_changes_the_frames_exactly_when_the_adapter_declares_it(
    loaded: Loaded, rendered: Rendered, name: str
) -> None:
    """What keeps a cache key honest: an undeclared input is not in the key, so it must not matter."""
    declared = name in pixel_inputs_of(adapter_class(loaded.manifest.adapter))

    other = loaded.render(loaded.variant(name, rendered))

    assert other.sink.count == FRAMES
    same = other.sink.frames.tobytes() == rendered.sink.frames.tobytes()
    assert same is not declared, f"{loaded.case.name} {'declares' if declared else 'does not declare'} {name}"
