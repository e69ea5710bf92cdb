"""A shot's inputs, staged for its worker: the portrait, the audio slice and the frames it continues from.

Inputs are re-read on the driver and checked against the digests the plan took at submit time: a
portrait or a dialogue file edited since then would render something the cache key does not describe.
They travel to the worker through Ray's object store; a portrait shared by many shots is put there once.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import ray

from farm.db.kinds import ArtifactKind
from farm.db.queries import find_artifact
from farm.db.session import Database
from farm.digests import file_sha256
from farm.engine.artifacts import ArtifactStore
from farm.errors import RenderError
from farm.media.audio import cut_audio, samples_digest
from farm.media.image import load_rgb
from farm.media.video import read_frames
from farm.plan import ShotTask


@dataclass(frozen=True)
class StagedInputs:
    """Object-store references a worker's ``render`` call takes."""

    reference_image: Any
    audio: Any
    continuation: Any | None


@dataclass
class InputStager:
    """Puts shots' inputs into the object store, each portrait once per drive."""

    db: Database
    store: ArtifactStore
    portraits: dict[str, Any] = field(default_factory=dict)

    def stage(self, task: ShotTask, continues: ShotTask | None, continuation_frames: int) -> StagedInputs:
        """The inputs of ``task`` (which continues ``continues``, if not None); RenderError if they changed."""
        portrait = self._portrait(task)
        audio = ray.put(_audio_of(task))
        continuation = None
        if continues is not None:
            continuation = ray.put(last_frames_of(self.db, self.store, continues, continuation_frames))
        return StagedInputs(portrait, audio, continuation)

    def _portrait(self, task: ShotTask) -> Any:
        if task.reference_sha256 not in self.portraits:
            if file_sha256(task.reference_image) != task.reference_sha256:
                raise RenderError(
                    f"{task.reference_image} changed since the job was submitted; submit the shot list again"
                )
            self.portraits[task.reference_sha256] = ray.put(load_rgb(task.reference_image))
        return self.portraits[task.reference_sha256]


def _audio_of(task: ShotTask) -> np.ndarray:
    samples = cut_audio(task.audio.path, task.audio.sample_range)
    if samples_digest(samples) != task.audio.sha256:
        raise RenderError(f"{task.audio.path} changed since the job was submitted; submit the shot list again")
    return samples


def last_frames_of(db: Database, store: ArtifactStore, task: ShotTask, count: int) -> np.ndarray:
    """The last ``count`` frames of ``task``'s rendered shot: its saved continuation frames, or read from
    its video when those are missing (an artifact store copied without them, say)."""
    saved = find_artifact(db, task.cache_key, ArtifactKind.LAST_FRAMES)
    if saved is not None and Path(saved.path).is_file():
        return store.load_last_frames(Path(saved.path))
    video = find_artifact(db, task.cache_key, ArtifactKind.SHOT_VIDEO)
    if video is None:
        raise RenderError(f"shot {task.shot_id} has no rendered video to continue from")
    tail: list[np.ndarray] = []
    for frame in read_frames(Path(video.path)):
        tail = [*tail[-(count - 1) :], frame] if count > 1 else [frame]
    return np.stack(tail)
