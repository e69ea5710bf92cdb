"""ShotList -> Plan: one ShotTask per shot with resolved inputs, frame count, audio slice and cache key.

Planning is pure (no database, no Ray): the same Plan is what ``farm plan`` prints, what the scheduler
submits, and what tests inspect. The cache key names the recipe of a shot's pixels, so a shot whose key
already has an artifact is never rendered twice, and editing one shot re-renders it and the shots that
``continue`` it, nothing else.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, replace
from fractions import Fraction
from pathlib import Path
from typing import Any

from farm.avatar.registry import adapter_class
from farm.catalog import DEFAULT_QUALITY, ModelCatalog, ModelManifest, Quality, weights_digest
from farm.digests import file_sha256
from farm.errors import Finding, ManifestError, ShotListError
from farm.media.audio import AudioSlice, SampleRange, cut_audio, samples_digest, seconds_to_samples
from farm.paths import display_path
from farm.shotlist.timecode import format_clock, format_frame_rate, parse_frame_rate_text
from farm.shotlist.types import CameraMove, CameraSpec, OutputSpec, RenderSettings, Shot, ShotList

CACHE_KEY_VERSION = 1
"""Bump when the set of cache-key inputs changes, so old keys can never match new recipes."""


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

    @property
    def duration(self) -> Fraction:
        return Fraction(self.frames) / self.fps

    @property
    def depends_on(self) -> tuple[str, ...]:
        return (self.continues,) if self.continues else ()

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ShotTask:
        """The inverse of ``to_json``: how a driver rebuilds its tasks from the database."""
        audio = data["audio"]
        return cls(
            shot_id=data["shot"],
            scene_id=data["scene"],
            order=data["order"],
            character_id=data["character"],
            reference_image=Path(data["reference_image"]),
            reference_sha256=data["reference_sha256"],
            audio=AudioSlice(
                track_id=audio["track"],
                path=Path(audio["file"]),
                start_sample=audio["start_sample"],
                end_sample=audio["end_sample"],
                sha256=audio["sha256"],
                sample_rate=audio["sample_rate"],
            ),
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
            "duration_seconds": float(self.duration),
            "audio": {
                "track": self.audio.track_id,
                "file": str(self.audio.path),
                "sample_rate": self.audio.sample_rate,
                "start_sample": self.audio.start_sample,
                "end_sample": self.audio.end_sample,
                "samples": self.audio.end_sample - self.audio.start_sample,
                "in": format_clock(self.audio.start_seconds),
                "out": format_clock(self.audio.end_seconds),
                "sha256": self.audio.sha256,
            },
            "camera": {"move": self.camera.move.value, "intensity": self.camera.intensity},
            "prompt": self.prompt,
            "negative_prompt": self.negative_prompt,
            "seed": self.seed,
            "steps": self.steps,
            "text_guidance": self.text_guidance,
            "audio_guidance": self.audio_guidance,
            "continues": self.continues,
            "depends_on": list(self.depends_on),
            "cache_key": self.cache_key,
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
) -> Plan:
    """The Plan for ``shot_list``; ``quality`` overrides the tier the shot list asks for."""
    digests = ModelIdentities(catalog, digest_memo)
    file_digests: dict[Path, str] = {}
    keys: dict[str, str] = {}
    tasks: list[ShotTask] = []
    for order, shot in enumerate(shot_list.shots):
        settings = shot_list.defaults.overlaid_with(shot.overrides)
        tier = quality or settings.quality or DEFAULT_QUALITY
        try:
            manifest = catalog.get(_model_name(settings, tier))
            task = _plan_shot(shot_list, shot, order, settings, tier, manifest, digests, file_digests, keys)
        except ManifestError as exc:
            raise ShotListError(
                [
                    Finding(
                        display_path(shot_list.path),
                        shot.line,
                        1,
                        "model",
                        str(exc),
                        "install the model's weights or choose another model",
                        shot.id,
                    )
                ]
            ) from exc
        keys[shot.id] = task.cache_key
        tasks.append(task)
    return Plan(
        shot_list=shot_list.path,
        shot_list_sha256=_file_sha256(shot_list.path, file_digests),
        project=shot_list.project,
        episode=shot_list.episode,
        output=shot_list.output,
        tasks=tuple(tasks),
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
    digests: ModelIdentities,
    file_digests: dict[Path, str],
    keys: dict[str, str],
) -> ShotTask:
    fps = shot_list.output.fps
    frames = round(shot.audio.duration * fps)
    track = shot_list.audio_tracks[shot.audio.track]
    start = seconds_to_samples(shot.audio.start)
    count = seconds_to_samples(Fraction(frames) / fps)
    samples = cut_audio(track.file, SampleRange(start, start + count))
    audio = AudioSlice(track.id, track.file, start, start + count, samples_digest(samples))
    character = shot_list.characters[shot.character]
    steps = settings.steps or manifest.defaults.steps
    seed = settings.seed if settings.seed is not None else 0
    text_guidance = _first(settings.text_guidance, manifest.defaults.text_guidance)
    audio_guidance = _first(settings.audio_guidance, manifest.defaults.audio_guidance)
    reference_sha256 = _file_sha256(character.image, file_digests)
    task = ShotTask(
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
        line=shot.line,
    )
    continues_key = keys[shot.continues] if shot.continues else None
    return replace(task, cache_key=task_cache_key(task, digests.identity(manifest), continues_key))


def task_cache_key(task: ShotTask, model_identity: dict[str, Any], continues_key: str | None) -> str:
    """The cache key of ``task``: everything that changes its pixels, chained to the shot it continues.

    ``model_identity`` is the model's name, adapter, code version, weights digest and render parameters
    (``ModelIdentities.identity``). Recomputing a key after changing a task (a retake with a new seed)
    gives exactly the key a shot list asking for that would get.
    """
    return cache_key(
        {
            "cache_key_version": CACHE_KEY_VERSION,
            "model": model_identity,
            "quality": task.quality.value,
            "reference_image_sha256": task.reference_sha256,
            "audio_sha256": task.audio.sha256,
            "audio_sample_rate": task.audio.sample_rate,
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
            "continues": continues_key,
        }
    )


def cache_key(inputs: dict[str, Any]) -> str:
    """sha256 of the canonical JSON of everything that changes a shot's pixels."""
    canonical = json.dumps(inputs, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def _first(value: float | None, fallback: float) -> float:
    return float(value) if value is not None else float(fallback)


def _file_sha256(path: Path, memo: dict[Path, str]) -> str:
    if path not in memo:
        memo[path] = file_sha256(path)
    return memo[path]


class ModelIdentities:
    """Each model's identity for cache keys, computed once per model (weights hashing is not free)."""

    def __init__(self, catalog: ModelCatalog, memo_file: Path | None) -> None:
        self.catalog = catalog
        self.memo_file = memo_file
        self._identities: dict[str, dict[str, Any]] = {}

    def identity(self, manifest: ModelManifest) -> dict[str, Any]:
        if manifest.name not in self._identities:
            self._identities[manifest.name] = {
                "name": manifest.name,
                "adapter": manifest.adapter,
                "code_version": adapter_class(manifest.adapter).code_version,
                "weights_sha256": weights_digest(manifest, self.memo_file),
                "render_params": manifest.render_params,
            }
        return self._identities[manifest.name]
