"""An edit's content key: the identity of everything that decides what an edit version contains.

Two assemblies with the same key write the same edit (the same shots' videos in the same order, the
same dialogue cut from the same samples, normalised to the same target, checked with the same settings,
by the same assembly code), so the second can re-use the first's files instead of assembling again: a
cached re-run of a shot list costs a database lookup, not a minute of ffmpeg. Anything that can change
a byte of edit.mp4, the timeline or the report's verdicts is in the key; bump ``EDIT_FORMAT_VERSION``
when the assembly, the exports or the checks change what they write for the same inputs.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from typing import Any

from farm.edit.retakes import Escalation
from farm.edit.timeline import EditShot
from farm.media.audio import AudioSlice
from farm.shotlist.types import ContinuityConfig, OutputSpec

EDIT_FORMAT_VERSION = 3
"""The version of what assembly, the timeline exports and the report write for given inputs."""


def edit_content_key(
    shots: Sequence[EditShot],
    *,
    output: OutputSpec,
    continuity: ContinuityConfig,
    loudness_lufs: float,
    true_peak_db: float,
    title: str,
    retake_attempts: Mapping[str, int] | None = None,
    escalations: Mapping[str, Sequence[Escalation]] | None = None,
    editorial: Mapping[str, Any] | None = None,
) -> str:
    """sha256 over the edit's inputs, as canonical JSON (shots in edit order)."""
    escalations = escalations or {}
    document = {
        "format": EDIT_FORMAT_VERSION,
        "output": {"fps": str(output.fps), "width": output.width, "height": output.height},
        "loudness_lufs": round(float(loudness_lufs), 4),
        "true_peak_db": round(float(true_peak_db), 4),
        "continuity": continuity.to_json(),
        "title": title,
        "retake_attempts": dict(sorted((retake_attempts or {}).items())),
        "shots": [_shot(shot, escalations.get(shot.shot_id, ())) for shot in shots],
        "editorial": dict(editorial or {}),
    }
    canonical = json.dumps(document, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()


def _shot(shot: EditShot, escalations: Sequence[Escalation]) -> dict[str, Any]:
    return {
        "shot": shot.shot_id,
        "scene": shot.scene_id,
        "character": shot.character_id,
        "person": shot.person_id,
        "order": shot.order,
        "cache_key": shot.cache_key,
        "frames": shot.frames,
        "fps": str(shot.fps),
        "audio": _audio(shot.audio),
        "audio_slip": shot.audio_slip,
        "other_speakers": [_audio(audio) for audio in shot.other_speakers_audio],
        "speakers": [[s.character_id, s.person_id, list(s.region)] for s in shot.speakers],
        "continues": shot.continues,
        "from_reference": shot.from_reference,
        "seed": shot.seed,
        "seams": list(shot.seams),
        "escalations": [[rung.level, rung.name] for rung in escalations],
    }


def _audio(audio: AudioSlice) -> list[object]:
    """The slice by its track's content (sha256), not its path: a moved track is the same dialogue."""
    return [audio.sha256, audio.start_sample, audio.end_sample, audio.sample_rate]
