"""The edit for editors: edit.otio, and from it the files each NLE conforms (EDL, FCP 7 XML, AAF).

The video track has one clip per shot, pointing at the shot's render through the version's media bundle
(``media/<shot_id>_v<N>.mp4``, see ``media_bundle``), so an editor's bin shows shot names and the editor
can re-cut, trim and relink; each clip carries the shot id, scene, character and cache key as metadata
(``metadata["farm"]``). The audio track has one clip per shot pointing at the ORIGINAL dialogue file with
the sample-exact range assembly cut (rate 48 kHz), which gives the editor the handles a mixed-down file
would not. Every media reference says how much media there is (``available_range``: the shot's frames,
the whole dialogue track). Flagged continuity results become markers on the clip they concern: red for
fail, yellow for warn, at the cut (the clip's first frame) or at the offending frame. Record time starts
at the configured record start (``global_start_time``, 01:00:00:00 by default).

Beside edit.otio go ``edit.edl`` (CMX 3600), ``edit.xml`` (FCP 7 XML) and ``edit.aaf``, each written by
OpenTimelineIO's adapter plug-in (``nle_formats``) when it is installed; with a ``[[path_map]]`` in the
config, ``for-<platform>/`` holds the same files with the media paths that platform mounts
(``path_map``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path

import opentimelineio as otio

from farm import files
from farm.config import DEFAULT_RECORD_START, PathMapping
from farm.defaults import EDIT_AUDIO_RATE
from farm.edit import nle_formats
from farm.edit.assemble import AssemblyResult
from farm.edit.checks.base import CheckResult, Verdict
from farm.edit.media_bundle import BundledShot, bundle_media
from farm.edit.path_map import local_platform, map_timeline
from farm.edit.timeline import EditShot
from farm.errors import UsageError
from farm.media.audio import decode_audio
from farm.shotlist.timecode import TimecodeError, is_smpte, parse_timecode

TIMELINE_FILE = "edit.otio"
EDL_FILE = "edit.edl"
FCP_XML_FILE = "edit.xml"
AAF_FILE = "edit.aaf"
EDITORIAL_FILES = (TIMELINE_FILE, EDL_FILE, FCP_XML_FILE, AAF_FILE)


@dataclass(frozen=True)
class EditorialOptions:
    """How the editorial files are written: where record time starts, and the shares' roots elsewhere."""

    record_start: str = DEFAULT_RECORD_START
    """The first frame's record timecode (``HH:MM:SS;FF``, drop-frame, at 29.97 and 59.94 fps)."""
    path_map: tuple[PathMapping, ...] = ()
    platform: str = field(default_factory=local_platform)
    """Where farm runs (linux, windows, macos): the platform whose paths the timeline holds."""


@dataclass(frozen=True)
class TimelinePaths:
    otio: Path
    edl: Path | None
    """None when the CMX 3600 adapter is not installed (so for ``xml`` and ``aaf``)."""
    xml: Path | None = None
    aaf: Path | None = None
    media: Path | None = None
    """The folder of shot-named media the files point at."""
    platforms: Mapping[str, Path] = field(default_factory=dict)
    """Platform -> the folder of the same files with that platform's paths (``[[path_map]]``)."""
    unmapped: tuple[str, ...] = ()
    """Media paths under no ``[[path_map]]`` root, left as they are in the platforms' files."""

    def files(self) -> tuple[Path, ...]:
        """Every editorial file written, the platforms' included."""
        own = (self.otio, self.edl, self.xml, self.aaf)
        return tuple(path for path in own if path is not None) + tuple(
            folder / name for folder in self.platforms.values() for name in EDITORIAL_FILES if (folder / name).is_file()
        )


def build_timeline(
    shots: Sequence[EditShot],
    assembly: AssemblyResult,
    results: Sequence[CheckResult],
    *,
    name: str = "edit",
    media: Mapping[str, BundledShot] | None = None,
    record_start_frames: int = 0,
) -> otio.schema.Timeline:
    """The edit as one timeline; ``media``: the shot-named files to point at (else the renders themselves)."""
    rate = float(assembly.fps)
    timeline = otio.schema.Timeline(name=name, global_start_time=otio.opentime.RationalTime(record_start_frames, rate))
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
        bundled = media.get(shot.shot_id) if media else None
        video_file = bundled.path if bundled else shot.video
        clip = otio.schema.Clip(
            name=shot.shot_id,
            media_reference=otio.schema.ExternalReference(
                target_url=otio.url_utils.url_from_filepath(str(video_file.resolve())), available_range=frames
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
            "render": str(shot.video.resolve()),
            "take": bundled.take if bundled else None,
        }
        clip.markers.extend(markers.get(shot.shot_id, []))
        video.append(clip)
        audio.append(_audio_clip(shot, assembled.source_start_sample, assembled.span.samples))
    timeline.tracks.append(video)
    timeline.tracks.append(audio)
    return timeline


def _audio_clip(shot: EditShot, first_sample: int, samples: int) -> otio.schema.Clip:
    track_samples = len(decode_audio(shot.audio.path, shot.audio.sample_rate))  # memoised: decoded for assembly
    whole_track = otio.opentime.TimeRange(
        otio.opentime.RationalTime(0, EDIT_AUDIO_RATE),
        otio.opentime.RationalTime(round(track_samples * EDIT_AUDIO_RATE / shot.audio.sample_rate), EDIT_AUDIO_RATE),
    )
    clip = otio.schema.Clip(
        name=f"{shot.shot_id} dialogue",
        media_reference=otio.schema.ExternalReference(
            target_url=otio.url_utils.url_from_filepath(str(shot.audio.path.resolve())), available_range=whole_track
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
    options: EditorialOptions | None = None,
) -> TimelinePaths:
    """Write the media bundle, ``edit.otio`` and each NLE's file whose adapter is installed, atomically;
    then, for each other platform the path map names, the same files with its paths in ``for-<platform>/``."""
    options = options or EditorialOptions()
    start = record_start_frames(options.record_start, assembly.fps)
    media = bundle_media(shots, out_dir)
    timeline = build_timeline(shots, assembly, results, name=name, media=media, record_start_frames=start)
    written = _write_files(timeline, out_dir, shots, assembly)
    platforms: dict[str, Path] = {}
    unmapped: list[str] = []
    for platform in _platforms(options):
        mapped = map_timeline(timeline, options.path_map, source=options.platform, target=platform)
        folder = out_dir / f"for-{platform}"
        folder.mkdir(exist_ok=True)
        _write_files(mapped.timeline, folder, shots, assembly)
        platforms[platform] = folder
        unmapped += mapped.unmapped
    paths = written
    return TimelinePaths(
        paths.otio,
        paths.edl,
        paths.xml,
        paths.aaf,
        media=out_dir / "media",
        platforms=platforms,
        unmapped=tuple(dict.fromkeys(unmapped)),
    )


def record_start_frames(record_start: str, fps: Fraction) -> int:
    """The record start as a frame count at ``fps``; UsageError saying what to write instead."""
    try:
        seconds = parse_timecode(record_start, fps) if is_smpte(record_start) else None
    except TimecodeError as exc:
        raise UsageError(f"record start {record_start}: {exc}") from exc
    if seconds is None:
        raise UsageError(f"record start {record_start!r} is not an SMPTE timecode; write HH:MM:SS:FF, e.g. 01:00:00:00")
    return round(seconds * fps)


def _platforms(options: EditorialOptions) -> list[str]:
    """The platforms other than farm's own that some ``[[path_map]]`` entry maps farm's paths to."""
    found = []
    for mapping in options.path_map:
        if mapping.root(options.platform) is None:
            continue
        found += [p for p in ("linux", "windows", "macos") if p != options.platform and mapping.root(p) is not None]
    return list(dict.fromkeys(found))


def _write_files(
    timeline: otio.schema.Timeline, folder: Path, shots: Sequence[EditShot], assembly: AssemblyResult
) -> TimelinePaths:
    otio_path = folder / TIMELINE_FILE
    _write_atomically(timeline, otio_path, "otio_json")
    installed = nle_formats.installed_adapters()
    prepared = nle_formats.nle_timeline(timeline, assembly.fps)
    edl = xml = aaf = None
    if nle_formats.EDL_ADAPTER in installed:
        edl = folder / EDL_FILE
        nle_formats.write_edl(prepared, edl, reels=_reels(shots))
    if nle_formats.FCP_XML_ADAPTER in installed:
        xml = folder / FCP_XML_FILE
        nle_formats.write_fcp_xml(prepared, xml)
    if nle_formats.AAF_ADAPTER in installed:
        aaf = folder / AAF_FILE
        nle_formats.write_aaf(prepared, aaf)
    return TimelinePaths(otio_path, edl, xml, aaf)


def _reels(shots: Sequence[EditShot]) -> dict[str, str]:
    """Clip name -> reel: each shot's picture by its shot id, each dialogue clip by its track's id."""
    reels = nle_formats.reel_names([shot.shot_id for shot in shots])
    tracks = nle_formats.reel_names(sorted({shot.audio.track_id for shot in shots}))
    reels.update({f"{shot.shot_id} dialogue": tracks[shot.audio.track_id] for shot in shots})
    return reels


def _write_atomically(timeline: otio.schema.Timeline, path: Path, adapter: str) -> None:
    temporary = files.temporary_path(path)
    try:
        otio.adapters.write_to_file(timeline, str(temporary), adapter_name=adapter)
        files.publish(temporary, path, fsync=False)
    finally:
        temporary.unlink(missing_ok=True)
