"""ShotList -> Plan: one ShotTask per shot with resolved inputs, frame count, audio slice and cache key.

Planning is pure (no database, no Ray): the same Plan is what ``farm plan`` prints, what the scheduler
submits, and what tests inspect. The cache key names the recipe of a shot's pixels, so a shot whose key
already has an artifact is never rendered twice, and editing one shot re-renders it and the shots that
``continue`` it, nothing else.
"""

from __future__ import annotations

import functools
import hashlib
import json
from dataclasses import dataclass, replace
from fractions import Fraction
from itertools import pairwise
from pathlib import Path
from typing import Any

import numpy as np

from farm.avatar.base import pixel_inputs_of
from farm.avatar.registry import adapter_class
from farm.catalog import DEFAULT_QUALITY, ModelCatalog, ModelManifest, Quality, SegmentPolicy, weights_digest
from farm.collector import collector_paused
from farm.defaults import MODEL_SAMPLE_RATE
from farm.digests import file_sha256
from farm.errors import Finding, ManifestError, MediaError, ShotListError
from farm.media.audio import AudioSlice, SampleRange, cut_audio, samples_digest
from farm.media.face_memo import FaceMemo
from farm.media.framing import Crop, Framing, frame_portrait
from farm.media.image import load_rgb
from farm.media.slice_digests import SliceDigests
from farm.media.snapshots import Snapshot, SnapshotStore
from farm.media.speech import pause_cuts
from farm.paths import display_path
from farm.shotlist.timecode import (
    format_clock,
    format_frame_rate,
    format_sample_clock,
    parse_frame_rate_text,
    round_ratio,
)
from farm.shotlist.types import (
    AudioCut,
    CameraMove,
    CameraSpec,
    OutputSpec,
    Region,
    RenderSettings,
    Shot,
    ShotList,
    TwoShotLayout,
)

CACHE_KEY_VERSION = 3
"""Bump when the set of cache-key inputs changes, so old keys can never match new recipes."""


@dataclass(frozen=True)
class PlannedSpeaker:
    """One person of a two-shot as planned: who, their portrait, their own audio slice, their face's region."""

    character_id: str
    person_id: str
    reference_image: Path
    reference_sha256: str
    audio: AudioSlice
    """Exactly as many samples as the shot's other speaker: both cover the shot's frames."""
    region: Region

    def to_json(self) -> dict[str, Any]:
        return {
            "character": self.character_id,
            "person": self.person_id,
            "reference_image": str(self.reference_image),
            "reference_sha256": self.reference_sha256,
            "audio": _audio_json(self.audio),
            "region": list(self.region),
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> PlannedSpeaker:
        return cls(
            character_id=data["character"],
            person_id=data["person"],
            reference_image=Path(data["reference_image"]),
            reference_sha256=data["reference_sha256"],
            audio=_audio_from_json(data["audio"]),
            region=tuple(float(v) for v in data["region"]),  # type: ignore[arg-type]
        )


@dataclass(frozen=True)
class TwoShotPlan:
    """A two-shot's people (first speaker first: the shot's own character and audio) and their layout."""

    layout: TwoShotLayout
    speakers: tuple[PlannedSpeaker, PlannedSpeaker]

    def to_json(self) -> dict[str, Any]:
        return {"layout": self.layout.value, "speakers": [speaker.to_json() for speaker in self.speakers]}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> TwoShotPlan:
        first, second = (PlannedSpeaker.from_json(entry) for entry in data["speakers"])
        return cls(TwoShotLayout(data["layout"]), (first, second))

    def key_json(self) -> dict[str, Any]:
        """What of the two-shot changes pixels: the layout, and each speaker's portrait, audio and region."""
        return {
            "layout": self.layout.value,
            "speakers": [
                {
                    "reference_image": speaker.reference_sha256,
                    "audio": {"sha256": speaker.audio.sha256, "sample_rate": speaker.audio.sample_rate},
                    "region": list(speaker.region),
                }
                for speaker in self.speakers
            ],
        }


def _audio_json(audio: AudioSlice) -> dict[str, Any]:
    return {
        "track": audio.track_id,
        "file": str(audio.path),
        "sample_rate": audio.sample_rate,
        "start_sample": audio.start_sample,
        "end_sample": audio.end_sample,
        "samples": audio.end_sample - audio.start_sample,
        "in": format_sample_clock(audio.start_sample, audio.sample_rate),
        "out": format_sample_clock(audio.end_sample, audio.sample_rate),
        "sha256": audio.sha256,
    }


def _audio_from_json(audio: dict[str, Any]) -> AudioSlice:
    return AudioSlice(
        track_id=audio["track"],
        path=Path(audio["file"]),
        start_sample=audio["start_sample"],
        end_sample=audio["end_sample"],
        sha256=audio["sha256"],
        sample_rate=audio["sample_rate"],
    )


@dataclass(frozen=True)
class InputCopy:
    """One input file of a shot (a portrait, a dialogue track) and its copy in the data dir's input store,
    taken when the job was submitted (``farm.media.snapshots``): the render and the edit read the copy."""

    original: Path
    snapshot: Snapshot

    def to_json(self) -> dict[str, Any]:
        return {"file": str(self.original), "sha256": self.snapshot.sha256, "stored": self.snapshot.relative}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> InputCopy:
        return cls(Path(data["file"]), Snapshot(data["sha256"], data["stored"]))


@dataclass(frozen=True)
class ShotTask:
    shot_id: str
    scene_id: str
    order: int
    character_id: str
    reference_image: Path
    reference_sha256: str
    audio: AudioSlice
    prompt: str
    negative_prompt: str
    camera: CameraSpec
    fps: Fraction
    width: int
    height: int
    frames: int
    quality: Quality
    model: str
    steps: int
    seed: int
    text_guidance: float
    audio_guidance: float
    continues: str | None
    cache_key: str
    line: int = 0
    person_id: str = ""
    """Who the character is (characters may be looks of one person); for continuity checks, not pixels."""
    from_reference: bool = False
    """Render from the reference portrait alone although the shot ``continues`` another: a colour retake
    whose jump came in with the continued frames. The shot then neither waits for nor keys on that shot."""
    audio_slip: int = 0
    """Frames the shot's audio is shifted against its picture in the edit (+: sound late); not pixels,
    so not in the cache key."""
    escalation: int = 0
    """How many rungs of its model's escalation ladder a retake has climbed (0: none); their ``render``
    overlays are part of the model's identity in the cache key."""
    framing: Framing | None = None
    """How the reference portrait is framed for the output: the crop the adapter applies, and the face
    camera moves anchor on (None: the adapter's centre crop)."""
    two_shot: TwoShotPlan | None = None
    """A second character in frame with its own audio slice; None for a single-character shot."""
    segments: tuple[int, ...] = ()
    """Frames of each segment of a take longer than its model's window, in order (empty: one piece);
    cut at speech pauses at plan time, so they are part of the cache key and ``farm plan`` shows them."""
    reanchor_every: int = 0
    """Every this many segments the take is pulled back to the reference portrait (0: one piece)."""
    inputs: tuple[InputCopy, ...] = ()
    """The copies of the shot's portraits and dialogue tracks taken at submit (empty: a job submitted
    before inputs were copied, which reads the originals); not pixels, so not in the cache key."""

    @property
    def duration(self) -> Fraction:
        return Fraction(self.frames) / self.fps

    @property
    def seam_frames(self) -> tuple[int, ...]:
        """The first frame of every segment after the first: where a seam check looks."""
        seams, at = [], 0
        for count in self.segments[:-1]:
            at += count
            seams.append(at)
        return tuple(seams)

    @property
    def depends_on(self) -> tuple[str, ...]:
        """The shot whose last frames this one renders from, if any."""
        return (self.continues,) if self.continues and not self.from_reference else ()

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ShotTask:
        """The inverse of ``to_json``: how a driver rebuilds its tasks from the database."""
        return cls(
            shot_id=data["shot"],
            scene_id=data["scene"],
            order=data["order"],
            character_id=data["character"],
            reference_image=Path(data["reference_image"]),
            reference_sha256=data["reference_sha256"],
            audio=_audio_from_json(data["audio"]),
            prompt=data["prompt"],
            negative_prompt=data["negative_prompt"],
            camera=CameraSpec(CameraMove(data["camera"]["move"]), data["camera"]["intensity"]),
            fps=parse_frame_rate_text(data["fps"]),
            width=data["width"],
            height=data["height"],
            frames=data["frames"],
            quality=Quality(data["quality"]),
            model=data["model"],
            steps=data["steps"],
            seed=data["seed"],
            text_guidance=data["text_guidance"],
            audio_guidance=data["audio_guidance"],
            continues=data["continues"],
            cache_key=data["cache_key"],
            line=data.get("line", 0),
            person_id=data.get("person", ""),
            from_reference=data.get("from_reference", False),
            escalation=data.get("escalation", 0),
            framing=_framing_from_json(data.get("framing")),
            two_shot=TwoShotPlan.from_json(data["two_shot"]) if data.get("two_shot") else None,
            audio_slip=data.get("audio_slip", 0),
            segments=tuple(data.get("segments", ())),
            reanchor_every=data.get("reanchor_every", 0),
            inputs=tuple(InputCopy.from_json(entry) for entry in data.get("inputs", ())),
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "order": self.order,
            "scene": self.scene_id,
            "shot": self.shot_id,
            "line": self.line,
            "character": self.character_id,
            "person": self.person_id,
            "reference_image": str(self.reference_image),
            "reference_sha256": self.reference_sha256,
            "quality": self.quality.value,
            "model": self.model,
            "fps": format_frame_rate(self.fps),
            "width": self.width,
            "height": self.height,
            "frames": self.frames,
            "duration_seconds": self.frames * self.fps.denominator / self.fps.numerator,  # float(self.duration)
            "audio": _audio_json(self.audio),
            "camera": {"move": self.camera.move.value, "intensity": self.camera.intensity},
            "prompt": self.prompt,
            "negative_prompt": self.negative_prompt,
            "seed": self.seed,
            "steps": self.steps,
            "text_guidance": self.text_guidance,
            "audio_guidance": self.audio_guidance,
            "continues": self.continues,
            "from_reference": self.from_reference,
            "depends_on": list(self.depends_on),
            "escalation": self.escalation,
            "framing": self.framing.to_json() if self.framing else None,
            "audio_slip": self.audio_slip,
            "segments": list(self.segments),
            "reanchor_every": self.reanchor_every,
            "seam_frames": list(self.seam_frames),
            "cache_key": self.cache_key,
            **({"two_shot": self.two_shot.to_json()} if self.two_shot else {}),
            **({"inputs": [copy.to_json() for copy in self.inputs]} if self.inputs else {}),
        }


@dataclass(frozen=True)
class Plan:
    shot_list: Path
    shot_list_sha256: str
    project: str
    episode: str
    output: OutputSpec
    tasks: tuple[ShotTask, ...]

    @property
    def total_frames(self) -> int:
        return sum(task.frames for task in self.tasks)

    def to_json(self) -> dict[str, Any]:
        with collector_paused():  # a long plan's document is millions of objects, none cyclic
            return self._json()

    def _json(self) -> dict[str, Any]:
        return {
            "shot_list": str(self.shot_list),
            "shot_list_sha256": self.shot_list_sha256,
            "project": self.project,
            "episode": self.episode,
            "output": {
                "fps": format_frame_rate(self.output.fps),
                "width": self.output.width,
                "height": self.output.height,
            },
            "total_frames": self.total_frames,
            "duration_seconds": float(Fraction(self.total_frames) / self.output.fps),
            "shots": [task.to_json() for task in self.tasks],
        }


def plan_shot_list(
    shot_list: ShotList,
    catalog: ModelCatalog,
    *,
    quality: Quality | None = None,
    digest_memo: Path | None = None,
    face_memo: Path | None = None,
) -> Plan:
    """The Plan for ``shot_list``; ``quality`` overrides the tier the shot list asks for.

    ``face_memo`` is where portraits' detected faces are memoised (by sha256) across processes.
    """
    with collector_paused(), SliceDigests() as slices:  # ten thousand tasks are many objects, none cyclic
        planner = _Planner(
            shot_list, catalog, quality, ModelIdentities(catalog, digest_memo), FaceMemo(face_memo), slices
        )
        tasks = tuple(planner.task(shot, order) for order, shot in enumerate(shot_list.shots))
    return Plan(
        shot_list=shot_list.path,
        shot_list_sha256=_file_sha256(shot_list.path, planner.file_digests),
        project=shot_list.project,
        episode=shot_list.episode,
        output=shot_list.output,
        tasks=tasks,
    )


class _Planner:
    """What the shots of one plan share: each portrait hashed and framed once, each model's identity
    computed once, the dialogue tracks open once (``slices``), and the keys of the shots planned so far
    (a shot's key chains to the key of the shot it continues, which comes before it)."""

    def __init__(
        self,
        shot_list: ShotList,
        catalog: ModelCatalog,
        quality: Quality | None,
        identities: ModelIdentities,
        faces: FaceMemo,
        slices: SliceDigests,
    ) -> None:
        self.shot_list = shot_list
        self.catalog = catalog
        self.quality = quality
        self.identities = identities
        self.faces = faces
        self.slices = slices
        self.file_digests: dict[Path, str] = {}
        self.framings: dict[str, Framing] = {}
        self.keys: dict[str, str] = {}

    def task(self, shot: Shot, order: int) -> ShotTask:
        """The shot's task with its cache key; a model that cannot be used is a finding on the shot."""
        try:
            task = self._task(shot, order)
        except ManifestError as exc:
            raise ShotListError(
                [
                    Finding(
                        display_path(self.shot_list.path),
                        shot.line,
                        1,
                        "model",
                        str(exc),
                        "install the model's weights or choose another model",
                        shot.id,
                    )
                ]
            ) from exc
        self.keys[shot.id] = task.cache_key
        return task

    def _task(self, shot: Shot, order: int) -> ShotTask:
        shot_list = self.shot_list
        settings = shot_list.defaults.overlaid_with(shot.overrides)
        tier = self.quality or settings.quality or DEFAULT_QUALITY
        manifest = self.catalog.get(_model_name(settings, tier))
        if shot.character not in self.framings:  # one character frames the same in every shot of the list
            image = shot_list.characters[shot.character].image
            sha256 = _file_sha256(image, self.file_digests)
            self.framings[shot.character] = _framing(shot_list, shot, sha256, self.faces)
        framing = self.framings[shot.character]
        task = _plan_shot(shot_list, shot, order, settings, tier, manifest, self.file_digests, framing, self.slices)
        continues_key = self.keys[shot.continues] if shot.continues else None
        key = task_cache_key(task, self.identities.identity(manifest), continues_key)
        return ShotTask(**{**vars(task), "cache_key": key})  # replace(), without its per-field checks


def _framing(shot_list: ShotList, shot: Shot, sha256: str, faces: FaceMemo) -> Framing:
    """The shot's framing of its character's portrait for the output size (see farm.media.framing)."""
    character = shot_list.characters[shot.character]
    output = (shot_list.output.width, shot_list.output.height)
    found = faces.faces(character.image, sha256) if character.is_person else None
    size = found.size if found else _image_size(character.image)
    return frame_portrait(
        size,
        found.faces if found else (),
        output,
        hint=character.face_hint,
        crop=character.crop,
        person=character.is_person,
    )


def _image_size(path: Path) -> tuple[int, int]:
    height, width = load_rgb(path).shape[:2]  # as loaded: EXIF orientation applied
    return width, height


def _framing_from_json(data: dict[str, Any] | None) -> Framing | None:
    if not data:
        return None
    face = data.get("face")
    return Framing(
        Crop(**data["crop"]), float(data["scale"]), tuple(data.get("warnings", ())), Crop(**face) if face else None
    )


def _model_name(settings: RenderSettings, tier: Quality) -> str:
    chosen = settings.preview_model if tier is Quality.PREVIEW else settings.model
    return chosen or tier.default_model


def _plan_shot(
    shot_list: ShotList,
    shot: Shot,
    order: int,
    settings: RenderSettings,
    tier: Quality,
    manifest: ModelManifest,
    file_digests: dict[Path, str],
    framing: Framing,
    slices: SliceDigests,
) -> ShotTask:
    """The shot's task, without its cache key (the caller adds it: it chains to the key of the shot continued)."""
    fps = shot_list.output.fps
    frames = _frames(shot.audio, fps)
    audio = _audio_slice(shot_list, shot.audio, frames, slices)
    character = shot_list.characters[shot.character]
    steps = settings.steps or manifest.defaults.steps
    seed = settings.seed if settings.seed is not None else 0
    text_guidance = _first(settings.text_guidance, manifest.defaults.text_guidance)
    audio_guidance = _first(settings.audio_guidance, manifest.defaults.audio_guidance)
    reference_sha256 = _file_sha256(character.image, file_digests)
    return ShotTask(
        shot_id=shot.id,
        scene_id=shot.scene_id,
        order=order,
        character_id=character.id,
        person_id=character.person_id,
        reference_image=character.image,
        reference_sha256=reference_sha256,
        audio=audio,
        prompt=shot.prompt,
        negative_prompt=shot.negative_prompt,
        camera=shot.camera,
        fps=fps,
        width=shot_list.output.width,
        height=shot_list.output.height,
        frames=frames,
        quality=tier,
        model=manifest.name,
        steps=steps,
        seed=seed,
        text_guidance=text_guidance,
        audio_guidance=audio_guidance,
        continues=shot.continues,
        cache_key="",
        framing=framing,
        line=shot.line,
        two_shot=_two_shot_plan(shot_list, shot, frames, audio, reference_sha256, file_digests, slices),
        audio_slip=shot.audio.slip,
        # a two-shot renders in one piece (its speakers' takes are not split)
        segments=_segments(audio, frames, fps, manifest.segments) if shot.two_shot is None else (),
        reanchor_every=manifest.segments.reanchor_every if manifest.segments and shot.two_shot is None else 0,
    )


def _audio_slice(shot_list: ShotList, cut: AudioCut, frames: int, slices: SliceDigests) -> AudioSlice:
    """The cut as a sample-exact slice covering exactly ``frames`` frames (every speaker's slice of a shot
    has this same length, whatever rounding its timecodes needed)."""
    track = shot_list.audio_tracks[cut.track]
    samples = _sample_range(shot_list, cut, frames)
    return AudioSlice(track.id, track.file, samples.start, samples.end, slices.digest(track.file, samples))


def _sample_range(shot_list: ShotList, cut: AudioCut, frames: int) -> SampleRange:
    fps = shot_list.output.fps
    start = round_ratio(cut.start.numerator * MODEL_SAMPLE_RATE, cut.start.denominator)
    count = round_ratio(frames * fps.denominator * MODEL_SAMPLE_RATE, fps.numerator)  # frames / fps in samples
    return SampleRange(start, start + count)


def _frames(cut: AudioCut, fps: Fraction) -> int:
    """The cut's length in whole frames at ``fps``: ``round(cut.duration * fps)``, in integers."""
    start, end = cut.start, cut.end
    numerator = (end.numerator * start.denominator - start.numerator * end.denominator) * fps.numerator
    return round_ratio(numerator, start.denominator * end.denominator * fps.denominator)


def _two_shot_plan(
    shot_list: ShotList,
    shot: Shot,
    frames: int,
    first_audio: AudioSlice,
    first_sha256: str,
    file_digests: dict[Path, str],
    slices: SliceDigests,
) -> TwoShotPlan | None:
    if shot.two_shot is None:
        return None
    first = shot_list.characters[shot.character]
    second = shot_list.characters[shot.two_shot.character]
    first_region, second_region = shot.two_shot.faces
    return TwoShotPlan(
        layout=shot.two_shot.layout,
        speakers=(
            PlannedSpeaker(first.id, first.person_id, first.image, first_sha256, first_audio, first_region),
            PlannedSpeaker(
                second.id,
                second.person_id,
                second.image,
                _file_sha256(second.image, file_digests),
                _audio_slice(shot_list, shot.two_shot.audio, frames, slices),
                second_region,
            ),
        ),
    )


def _segments(audio: AudioSlice, frames: int, fps: Fraction, policy: SegmentPolicy | None) -> tuple[int, ...]:
    """``take_segments`` of the shot's dialogue, read only for a take longer than one segment."""
    if policy is None:
        return ()
    longest = Fraction(policy.max_seconds)  # frames / fps <= longest, in integers:
    if frames * fps.denominator * longest.denominator <= longest.numerator * fps.numerator:
        return ()
    return take_segments(cut_audio(audio.path, audio.sample_range), frames, fps, policy)


def take_segments(samples: np.ndarray, frames: int, fps: Fraction, policy: SegmentPolicy | None) -> tuple[int, ...]:
    """The frames of each segment of a take cut at its speech pauses; () when it renders in one piece.

    Cuts are found on the shot's own dialogue (``farm.media.speech``) in samples and land on the frame
    nearest each; a take no longer than the policy's ``max_seconds`` is one piece.
    """
    if policy is None or Fraction(frames) / fps <= Fraction(policy.max_seconds):
        return ()
    rate = MODEL_SAMPLE_RATE
    cuts = pause_cuts(samples, rate, round(policy.min_seconds * rate), round(policy.max_seconds * rate))
    edges = [0]
    for cut in cuts:
        frame = min(frames, round(Fraction(cut) * fps / rate))
        if frame > edges[-1]:
            edges.append(frame)
    if edges[-1] < frames:
        edges.append(frames)
    counts = tuple(after - before for before, after in pairwise(edges))
    return counts if len(counts) > 1 else ()


def escalated(task: ShotTask, manifest: ModelManifest, level: int) -> ShotTask:
    """``task`` with its model's escalation rungs up to ``level`` applied (its key is not recomputed).

    Rungs apply in order on top of the task as planned or retaken: steps only ever rise, guidance
    scales are replaced, and the rungs' render overlays come in through ``task.escalation``.
    """
    for rung in manifest.escalation[task.escalation : level]:
        task = replace(
            task,
            steps=max(task.steps, rung.steps) if rung.steps is not None else task.steps,
            text_guidance=_first(rung.text_guidance, task.text_guidance),
            audio_guidance=_first(rung.audio_guidance, task.audio_guidance),
        )
    return replace(task, escalation=max(task.escalation, level))


def escalation_ladder(task: ShotTask, manifest: ModelManifest) -> tuple[tuple[int, str], ...]:
    """The rungs above ``task``'s that would change its recipe, as (level, description), lowest first.

    A rung that changes nothing for this shot (its steps are already that high, the settings it asks
    for are the planned ones) is left out: a retake with the same recipe would render the same pixels.
    """
    ladder: list[tuple[int, str]] = []
    current = task
    for level in range(task.escalation + 1, len(manifest.escalation) + 1):
        climbed = escalated(current, manifest, level)
        changes = _recipe_changes(current, climbed, manifest)
        if changes:
            ladder.append((level, f"{manifest.escalation[level - 1].name} ({', '.join(changes)})"))
        current = climbed
    return tuple(ladder)


def _recipe_changes(before: ShotTask, after: ShotTask, manifest: ModelManifest) -> list[str]:
    changes = [
        f"{name.replace('_', ' ')} {getattr(before, name):g} -> {getattr(after, name):g}"
        for name in ("steps", "text_guidance", "audio_guidance")
        if getattr(before, name) != getattr(after, name)
    ]
    old, new = manifest.render_params_at(before.escalation), manifest.render_params_at(after.escalation)
    changes += [
        f"{name} {_yaml_value(old.get(name))} -> {_yaml_value(new[name])}"
        for name in sorted(new)
        if old.get(name) != new[name]
    ]
    return changes


def _yaml_value(value: Any) -> str:
    """A render parameter as the manifest writes it."""
    return json.dumps(value) if value is None or isinstance(value, bool) else str(value)


SHOT_FILE_INPUTS = frozenset({"audio", "fps", "width", "height", "frames"})
"""Keyed whatever the adapter reads: the shot's video file holds its audio and has its size, rate and length."""
TWO_SHOT_FILE_INPUTS = frozenset({"speakers"})
"""A two-shot's file carries the mix of its speakers' audio, so their slices are keyed whatever the model reads."""


def task_cache_key(task: ShotTask, model: ModelIdentity, continues_key: str | None) -> str:
    """The cache key of ``task``: the inputs its model's pixels depend on, chained to the shot it continues.

    ``model`` is the model's name, adapter, code version, weights digest and render parameters, and the
    request inputs its adapter declares (``pixel_inputs``): only those go into the key, so a prompt edit
    re-renders nothing at preview (previz does not read the prompt) and a shot re-keys with the shot it
    continues only when its model reads the continuation. The audio slice, size, frame rate and length
    are always keyed, since the shot's file carries them. Recomputing a key after changing a task (a
    retake with a new seed) gives exactly the key a shot list asking for that would get.
    """
    parts = [
        _VERSION_PART,
        f'"inputs":{_canonical(_keyed_inputs(task, model, continues_key))}',
        f'"model":{model.canonical_json}',
        f'"quality":{_canonical(task.quality.value)}',
    ]
    take = _keyed_take(task)
    if take is not None:
        parts.append(f'"take":{_canonical(take)}')
    # The keys in sorted order, each value in canonical JSON: exactly cache_key(key_document(...)), with the
    # model's part encoded once per model instead of once per shot (a 10,000-shot plan, issue 18).
    return _sha256_hex("{" + ",".join(parts) + "}")


def key_document(task: ShotTask, model: ModelIdentity, continues_key: str | None) -> dict[str, Any]:
    """Everything ``task_cache_key`` hashes, as one document: ``cache_key`` of it is the task's key."""
    document: dict[str, Any] = {
        "cache_key_version": CACHE_KEY_VERSION,
        "model": model.to_json(),
        "quality": task.quality.value,
        "inputs": _keyed_inputs(task, model, continues_key),
    }
    take = _keyed_take(task)
    if take is not None:
        document["take"] = take
    return document


def _keyed_take(task: ShotTask) -> dict[str, Any] | None:
    """Keyed only when split, so a one-piece shot keeps the key it always had."""
    if len(task.segments) > 1:
        return {"segments": list(task.segments), "reanchor_every": task.reanchor_every}
    return None


def _keyed_inputs(task: ShotTask, model: ModelIdentity, continues_key: str | None) -> dict[str, Any]:
    reads = model.pixel_inputs | SHOT_FILE_INPUTS | TWO_SHOT_FILE_INPUTS
    values: dict[str, Any] = {
        "reference_image": task.reference_sha256,
        "audio": {"sha256": task.audio.sha256, "sample_rate": task.audio.sample_rate},
        "prompt": task.prompt,
        "negative_prompt": task.negative_prompt,
        "camera": {"move": task.camera.move.value, "intensity": task.camera.intensity},
        "seed": task.seed,
        "steps": task.steps,
        "text_guidance": task.text_guidance,
        "audio_guidance": task.audio_guidance,
        "width": task.width,
        "height": task.height,
        "fps": format_frame_rate(task.fps),
        "frames": task.frames,
        "continuation": continues_key if task.depends_on else None,
        "framing": task.framing.key() if task.framing else None,
    }
    if task.two_shot is not None:  # only then: a single-character shot's key is what it always was
        values["speakers"] = task.two_shot.key_json()
    return {name: value for name, value in values.items() if name in reads}


def cache_key(inputs: dict[str, Any]) -> str:
    """sha256 of the canonical JSON of everything that changes a shot's pixels."""
    return _sha256_hex(_canonical(inputs))


_CANONICAL = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=False)
"""What ``json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)`` builds per call, built once."""


def _canonical(value: Any) -> str:
    return _CANONICAL.encode(value)


_VERSION_PART = f'"cache_key_version":{_canonical(CACHE_KEY_VERSION)}'


def _sha256_hex(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _first(value: float | None, fallback: float) -> float:
    return float(value) if value is not None else float(fallback)


def _file_sha256(path: Path, memo: dict[Path, str]) -> str:
    if path not in memo:
        memo[path] = file_sha256(path)
    return memo[path]


@dataclass(frozen=True)
class ModelIdentity:
    """What of a model goes into its shots' cache keys."""

    name: str
    adapter: str
    code_version: str
    weights_sha256: str
    render_params: dict[str, Any]
    pixel_inputs: frozenset[str]
    """The request inputs its adapter reads (``AvatarModel.pixel_inputs``)."""

    @functools.cached_property
    def canonical_json(self) -> str:
        """``to_json()`` in the cache key's canonical JSON, encoded once (every shot of the model keys it)."""
        return _canonical(self.to_json())

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "adapter": self.adapter,
            "code_version": self.code_version,
            "weights_sha256": self.weights_sha256,
            "render_params": self.render_params,
            "pixel_inputs": sorted(self.pixel_inputs),
        }


class ModelIdentities:
    """Each model's identity for cache keys, computed once per model (weights hashing is not free)."""

    def __init__(self, catalog: ModelCatalog, memo_file: Path | None) -> None:
        self.catalog = catalog
        self.memo_file = memo_file
        self._identities: dict[str, ModelIdentity] = {}

    def identity(self, manifest: ModelManifest, escalation: int = 0) -> ModelIdentity:
        """``manifest``'s identity, its render parameters with the first ``escalation`` rungs laid over."""
        if manifest.name not in self._identities:
            adapter = adapter_class(manifest.adapter)
            self._identities[manifest.name] = ModelIdentity(
                name=manifest.name,
                adapter=manifest.adapter,
                code_version=adapter.code_version,
                weights_sha256=weights_digest(manifest, self.memo_file),
                render_params=manifest.render_params,
                pixel_inputs=pixel_inputs_of(adapter),
            )
        identity = self._identities[manifest.name]
        return replace(identity, render_params=manifest.render_params_at(escalation)) if escalation else identity


# ---- input copies: what a job reads is what was submitted ----------------------------------------------


def input_files(task: ShotTask) -> tuple[Path, ...]:
    """The files a shot's render reads: its portraits and dialogue tracks, each once, in a stable order."""
    paths = [task.reference_image, task.audio.path]
    if task.two_shot is not None:
        for speaker in task.two_shot.speakers:
            paths += [speaker.reference_image, speaker.audio.path]
    return tuple(dict.fromkeys(paths))


def with_input_copies(task: ShotTask, store: SnapshotStore, taken: dict[Path, Snapshot]) -> ShotTask:
    """``task`` with its input files copied into ``store`` (``taken`` memoises the copies of one submit).

    A portrait whose copy is not what the plan hashed was saved over while the job was being submitted:
    MediaError, so the job never records a copy that its cache key does not describe.
    """
    for path in input_files(task):
        if path not in taken:
            taken[path] = store.put(path)
    planned = {task.reference_image: task.reference_sha256}
    if task.two_shot is not None:
        planned.update({speaker.reference_image: speaker.reference_sha256 for speaker in task.two_shot.speakers})
    for path, sha256 in planned.items():
        if taken[path].sha256 != sha256:
            raise MediaError(
                f"{display_path(path)} changed while shot {task.shot_id} was being submitted; "
                "submit the shot list again"
            )
    return replace(task, inputs=tuple(InputCopy(path, taken[path]) for path in input_files(task)))


def reading_copies(task: ShotTask, store: SnapshotStore, verified: dict[Snapshot, Path]) -> ShotTask:
    """``task`` with its input paths pointing at its checked copies in ``store`` (unchanged if it has none).

    Every reader of a shot's inputs (the render's stager, assembly, the checks) goes through this, so an
    original edited after submit changes nothing. ``verified`` memoises the copies checked (a long dialogue
    track is hashed once per drive, not once per shot); a copy missing or altered is a MediaError naming it.
    """
    if not task.inputs:
        return task
    for copy in task.inputs:
        if copy.snapshot not in verified:
            verified[copy.snapshot] = store.path_of(copy.snapshot)
    located = {copy.original: verified[copy.snapshot] for copy in task.inputs}
    two_shot = task.two_shot
    if two_shot is not None:
        speakers = tuple(
            replace(
                speaker,
                reference_image=located.get(speaker.reference_image, speaker.reference_image),
                audio=replace(speaker.audio, path=located.get(speaker.audio.path, speaker.audio.path)),
            )
            for speaker in two_shot.speakers
        )
        two_shot = replace(two_shot, speakers=speakers)  # type: ignore[arg-type]
    return replace(
        task,
        reference_image=located.get(task.reference_image, task.reference_image),
        audio=replace(task.audio, path=located.get(task.audio.path, task.audio.path)),
        two_shot=two_shot,
    )


def check_originals(task: ShotTask) -> None:
    """For a shot with no input copies (submitted before they were taken): MediaError naming the first
    portrait or dialogue slice that no longer holds what the plan hashed, so nothing is built on other
    inputs than the shot was rendered from (lip-synced pictures over replaced dialogue, say)."""
    portraits = [(task.reference_image, task.reference_sha256)]
    slices = [task.audio]
    if task.two_shot is not None:
        portraits += [(speaker.reference_image, speaker.reference_sha256) for speaker in task.two_shot.speakers]
        slices += [speaker.audio for speaker in task.two_shot.speakers]
    for path, sha256 in dict.fromkeys(portraits):
        if not path.is_file() or file_sha256(path) != sha256:
            raise MediaError(_changed(path, task, "portrait"))
    for audio in dict.fromkeys(slices):
        if samples_digest(cut_audio(audio.path, audio.sample_range)) != audio.sha256:
            span = f"{format_clock(audio.start_seconds)}-{format_clock(audio.end_seconds)}"
            raise MediaError(_changed(audio.path, task, f"dialogue ({span})"))


def _changed(path: Path, task: ShotTask, what: str) -> str:
    return (
        f"{display_path(path)}: the {what} of shot {task.shot_id} changed since it was rendered; restore the "
        "file, or submit the shot list again to re-render the shots it changes"
    )
