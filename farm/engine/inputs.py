"""A shot's inputs, staged for its worker: the portrait, the audio slice and the frames it continues from.

Inputs are read from the copies taken at submit (``farm.media.snapshots``; ``ShotTask.inputs``), each
checked against its digest, so an original edited after submit changes nothing. A job submitted before
copies were taken reads the originals, checked against the digests the plan took: a portrait or a dialogue
file edited since then would render something the cache key does not describe.
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
from farm.engine.takes import split_audio
from farm.errors import RenderError
from farm.media.audio import AudioSlice, cut_audio, samples_digest
from farm.media.image import load_rgb
from farm.media.snapshots import Snapshot, SnapshotStore
from farm.media.video import read_frames
from farm.plan import ShotTask, reading_copies


@dataclass(frozen=True)
class StagedInputs:
    """Object-store references a worker's ``render`` call takes."""

    reference_image: Any
    audio: Any
    """int16 samples: (n,) for one speaker, (speakers, n) for a two-shot, first speaker first."""
    continuation: Any | None
    second_image: Any | None = None
    """A two-shot's second speaker's portrait; None for a single-character shot."""


@dataclass
class InputStager:
    """Puts shots' inputs into the object store, each portrait once per drive."""

    db: Database
    store: ArtifactStore
    snapshots: SnapshotStore | None = None
    """The input copies' store (None: shots read their originals, as a job submitted before copies did)."""
    portraits: dict[str, Any] = field(default_factory=dict)
    verified: dict[Snapshot, Path] = field(default_factory=dict)

    def stage(self, task: ShotTask, continues: ShotTask | None, continuation_frames: int) -> StagedInputs:
        """The inputs of ``task`` (which continues ``continues``, if not None); RenderError if they changed."""
        if self.snapshots is not None:  # MediaError naming a copy that is missing or altered
            task = reading_copies(task, self.snapshots, self.verified)
        portrait = self._portrait(task.reference_image, task.reference_sha256)
        second_image = None
        audio: Any
        if task.two_shot is not None:
            audio = ray.put(np.stack([_audio_of(speaker.audio) for speaker in task.two_shot.speakers]))
            second = task.two_shot.speakers[1]
            second_image = self._portrait(second.reference_image, second.reference_sha256)
        elif len(task.segments) > 1:
            # A long take ships as one object per segment, each fetched by the worker only when that
            # segment renders, so the worker never holds the whole take's audio.
            audio = [ray.put(piece) for piece in split_audio(_audio_of(task.audio), task.segments, task.fps)]
        else:
            audio = ray.put(_audio_of(task.audio))
        continuation = None
        if continues is not None:
            continuation = ray.put(last_frames_of(self.db, self.store, continues, continuation_frames))
        return StagedInputs(portrait, audio, continuation, second_image)

    def _portrait(self, path: Path, sha256: str) -> Any:
        if sha256 not in self.portraits:
            if file_sha256(path) != sha256:
                raise RenderError(f"{path} changed since the job was submitted; submit the shot list again")
            self.portraits[sha256] = ray.put(load_rgb(path))
        return self.portraits[sha256]


def _audio_of(audio: AudioSlice) -> np.ndarray:
    samples = cut_audio(audio.path, audio.sample_range)
    if samples_digest(samples) != audio.sha256:
        raise RenderError(f"{audio.path} changed since the job was submitted; submit the shot list again")
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
