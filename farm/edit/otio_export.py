"""The edit for editors: an OpenTimelineIO timeline (and a CMX 3600 EDL when that adapter is installed).

The video track has one clip per shot, pointing at the shot's own render (not at edit.mp4), so an
editor can re-cut, trim and relink; each clip carries the shot id, scene, character and cache key as
metadata. The audio track has one clip per shot pointing at the ORIGINAL dialogue file with the
sample-exact range assembly cut (rate 48 kHz), which gives the editor the handles a mixed-down file
would not. Flagged continuity results become markers on the clip they concern: red for fail, yellow
for warn, at the cut (the clip's first frame) or at the offending frame.

OTIO 0.18 ships only its native adapters; the CMX 3600 EDL comes from the ``otio-cmx3600-adapter``
plug-in. EDLs count whole frames, so the EDL has the video track only.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import opentimelineio as otio

from farm import files
from farm.defaults import EDIT_AUDIO_RATE
from farm.edit.assemble import AssemblyResult
from farm.edit.checks.base import CheckResult, Verdict
from farm.edit.timeline import EditShot

TIMELINE_FILE = "edit.otio"
EDL_FILE = "edit.edl"
EDL_ADAPTER = "cmx_3600"


@dataclass(frozen=True)
class TimelinePaths:
    otio: Path
    edl: Path | None
    """None when the CMX 3600 adapter is not installed."""


def build_timeline(
    shots: Sequence[EditShot], assembly: AssemblyResult, results: Sequence[CheckResult], *, name: str = "edit"
) -> otio.schema.Timeline:
    rate = float(assembly.fps)
    timeline = otio.schema.Timeline(name=name)
    timeline.metadata["farm"] = {
        "edit": str(assembly.path),
        "frames": assembly.frames,
        "fps": str(assembly.fps),
        "width": assembly.width,
        "height": assembly.height,
        "loudness": assembly.to_json()["loudness"],
    }
    video = otio.schema.Track(name="V1", kind=otio.schema.TrackKind.Video)
    audio = otio.schema.Track(name="A1", kind=otio.schema.TrackKind.Audio)
    markers = _markers_by_shot(results, assembly, rate)
    for shot in shots:
        assembled = assembly.shot(shot.shot_id)
        frames = otio.opentime.TimeRange(
            otio.opentime.RationalTime(0, rate), otio.opentime.RationalTime(shot.frames, rate)
        )
        clip = otio.schema.Clip(
            name=shot.shot_id,
            media_reference=otio.schema.ExternalReference(
                target_url=otio.url_utils.url_from_filepath(str(shot.video.resolve())), available_range=frames
            ),
            source_range=frames,
        )
        clip.metadata["farm"] = {
            "shot": shot.shot_id,
            "scene": shot.scene_id,
            "character": shot.character_id,
            "person": shot.person,
            "order": shot.order,
            "cache_key": shot.cache_key,
            "seed": shot.seed,
            "assembly": assembled.route.value,
        }
        clip.markers.extend(markers.get(shot.shot_id, []))
        video.append(clip)
        audio.append(_audio_clip(shot, assembled.source_start_sample, assembled.span.samples))
    timeline.tracks.append(video)
    timeline.tracks.append(audio)
    return timeline


def _audio_clip(shot: EditShot, first_sample: int, samples: int) -> otio.schema.Clip:
    clip = otio.schema.Clip(
        name=f"{shot.shot_id} dialogue",
        media_reference=otio.schema.ExternalReference(
            target_url=otio.url_utils.url_from_filepath(str(shot.audio.path.resolve()))
        ),
        source_range=otio.opentime.TimeRange(
            otio.opentime.RationalTime(first_sample, EDIT_AUDIO_RATE),
            otio.opentime.RationalTime(samples, EDIT_AUDIO_RATE),
        ),
    )
    clip.metadata["farm"] = {"shot": shot.shot_id, "track": shot.audio.track_id, "sample_rate": EDIT_AUDIO_RATE}
    return clip


def _markers_by_shot(
    results: Sequence[CheckResult], assembly: AssemblyResult, rate: float
) -> dict[str, list[otio.schema.Marker]]:
    markers: dict[str, list[otio.schema.Marker]] = {}
    for result in results:
        if not result.flagged:
            continue
        shot_id = result.subject.shots[-1]
        first = assembly.shot(shot_id).span.first_frame
        at = (result.frame - first) if result.frame is not None else 0
        marker = otio.schema.Marker(
            name=result.check,
            marked_range=otio.opentime.TimeRange(
                otio.opentime.RationalTime(at, rate), otio.opentime.RationalTime(1, rate)
            ),
            color=otio.schema.MarkerColor.RED if result.verdict is Verdict.FAIL else otio.schema.MarkerColor.YELLOW,
        )
        marker.comment = result.message
        found = result.to_json()
        details = found["details"]
        assert isinstance(details, dict)
        found["details"] = {key: value for key, value in details.items() if not key.endswith("_curve")}  # plots
        marker.metadata["farm"] = found
        markers.setdefault(shot_id, []).append(marker)
    return markers


def export_timeline(
    shots: Sequence[EditShot],
    assembly: AssemblyResult,
    results: Sequence[CheckResult],
    out_dir: Path,
    *,
    name: str = "edit",
) -> TimelinePaths:
    """Write ``edit.otio`` (and ``edit.edl`` when the CMX 3600 adapter is installed) atomically."""
    timeline = build_timeline(shots, assembly, results, name=name)
    otio_path = out_dir / TIMELINE_FILE
    _write_atomically(timeline, otio_path, "otio_json")
    edl_path = None
    if EDL_ADAPTER in {adapter.name for adapter in otio.plugins.ActiveManifest().adapters}:
        picture_only = timeline.deepcopy()
        for track in list(picture_only.tracks):
            if track.kind != otio.schema.TrackKind.Video:
                picture_only.tracks.remove(track)
        edl_path = out_dir / EDL_FILE
        _write_atomically(picture_only, edl_path, EDL_ADAPTER)
    return TimelinePaths(otio_path, edl_path)


def _write_atomically(timeline: otio.schema.Timeline, path: Path, adapter: str) -> None:
    temporary = files.temporary_path(path)
    try:
        otio.adapters.write_to_file(timeline, str(temporary), adapter_name=adapter)
        files.publish(temporary, path, fsync=False)
    finally:
        temporary.unlink(missing_ok=True)
