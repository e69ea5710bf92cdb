"""Reading back a timeline an editor re-cut in an NLE: its picture clips and dialogue clips, in frames.

The timeline is whatever OpenTimelineIO reads: farm's own ``edit.otio``, a CMX 3600 EDL (through the
``otio-cmx3600-adapter`` plug-in) or FCP 7 XML (through ``otio-fcp-adapter``). Every time is quantised at
the boundary, picture to whole frames at the edit's rate and dialogue to 48 kHz samples, so the conform
rules downstream compare integers. Record positions are kept relative to the start of the timeline: an
NLE's record timecode (``global_start_time``, 01:00:00:00 by convention) only shows up in messages.

Nothing here knows shot lists or jobs: which clip is which shot is decided by ``farm.edit.conform``.
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import opentimelineio as otio

from farm.defaults import EDIT_AUDIO_RATE
from farm.errors import ClipFinding, UsageError
from farm.paths import display_path

TIMELINE_ADAPTERS = {".otio": "otio_json", ".edl": "cmx_3600", ".xml": "fcp_xml"}
"""The timeline formats conform reads, by file suffix, and the OTIO adapter that reads each."""
ADAPTER_PACKAGES = {"cmx_3600": "otio-cmx3600-adapter", "fcp_xml": "otio-fcp-adapter"}
"""The pip package that provides each plug-in adapter (OTIO itself ships only otio_json)."""
SOUND_SUFFIX = " dialogue"
"""farm names a shot's dialogue clip ``<shot id> dialogue`` (farm.edit.otio_export)."""


@dataclass(frozen=True)
class CutClip:
    """One picture clip of the re-cut timeline: where it sits (record) and what part of its media it plays
    (source), in frames at the edit's rate."""

    track: str
    index: int
    """1-based among the clips of its track (gaps and transitions not counted), as an NLE numbers events."""
    name: str
    shot_id: str | None
    """``metadata["farm"]["shot"]``, which survives renames in the NLE; None when the format dropped it."""
    reel: str | None
    """The EDL's reel name, when the timeline came from an EDL."""
    record_start: int
    record_end: int
    source_start: int
    source_frames: int
    timecode: str
    """The record timecode of the clip's first frame, as the editor's NLE shows it."""

    @property
    def label(self) -> str:
        return f"{self.track} clip {self.index} '{self.name}' at {self.timecode}"

    @property
    def candidates(self) -> tuple[str, ...]:
        """The names this clip may know its shot by, best first: metadata, clip name, reel."""
        names = (self.shot_id, self.name, self.reel)
        return tuple(dict.fromkeys(name for name in names if name))


@dataclass(frozen=True)
class CutSound:
    """One dialogue clip: the span of its dialogue file it plays, in 48 kHz samples."""

    track: str
    index: int
    name: str
    shot_id: str | None
    first_sample: int
    samples: int
    timecode: str

    @property
    def label(self) -> str:
        return f"{self.track} clip {self.index} '{self.name}' at {self.timecode}"

    @property
    def candidates(self) -> tuple[str, ...]:
        stem = self.name[: -len(SOUND_SUFFIX)] if self.name.endswith(SOUND_SUFFIX) else self.name
        return tuple(dict.fromkeys(name for name in (self.shot_id, stem) if name))


@dataclass(frozen=True)
class RecutTimeline:
    path: Path
    name: str
    """The file as a person would type it, for messages."""
    clips: tuple[CutClip, ...]
    """Every enabled picture clip of every video track, in record order."""
    sounds: tuple[CutSound, ...]
    problems: tuple[ClipFinding, ...]
    """What the timeline holds that a cut-only edit cannot take (transitions, nested sequences)."""


def read_recut(path: Path, fps: Fraction) -> RecutTimeline:
    """The clips of the timeline at ``path`` quantised at ``fps``; UsageError if it cannot be read."""
    name = display_path(path)
    timeline = _read_timeline(path, name, fps)
    start = timeline.global_start_time
    clips: list[CutClip] = []
    sounds: list[CutSound] = []
    problems: list[ClipFinding] = []
    for number, track in enumerate(timeline.video_tracks(), start=1):
        clips.extend(_track_clips(track, track.name or f"V{number}", name, fps, start, problems))
    for number, track in enumerate(timeline.audio_tracks(), start=1):
        for clip in _track_clips(track, track.name or f"A{number}", name, fps, start, problems):
            sounds.append(clip)  # type: ignore[arg-type]
    clips.sort(key=lambda clip: (clip.record_start, clip.track))
    return RecutTimeline(path, name, tuple(clips), tuple(sounds), tuple(problems))


def _read_timeline(path: Path, name: str, fps: Fraction) -> otio.schema.Timeline:
    adapter = TIMELINE_ADAPTERS.get(path.suffix.lower())
    if adapter is None:
        known = ", ".join(TIMELINE_ADAPTERS)
        raise UsageError(f"{name}: farm conforms {known} timelines, not '{path.suffix}'; export one of those")
    if adapter not in {plugin.name for plugin in otio.plugins.ActiveManifest().adapters}:
        raise UsageError(
            f"{name}: reading {path.suffix} needs the OpenTimelineIO adapter '{adapter}'; "
            f"install it with: pip install {ADAPTER_PACKAGES[adapter]}"
        )
    if not path.is_file():
        raise UsageError(f"{name}: no such timeline file; give the path of the timeline the editor exported")
    options = {"rate": float(fps)} if adapter == "cmx_3600" else {}
    try:
        result = otio.adapters.read_from_file(str(path), adapter_name=adapter, **options)
    except Exception as exc:  # each adapter raises its own kinds; all mean "not a timeline we can read"
        raise UsageError(f"{name}: cannot be read as {path.suffix} ({exc}); export the timeline again") from exc
    if isinstance(result, otio.schema.SerializableCollection):
        timelines = list(result.find_children(descended_from_type=otio.schema.Timeline, shallow_search=True))
        if len(timelines) != 1:
            raise UsageError(f"{name}: holds {len(timelines)} sequences; export only the re-cut sequence")
        result = timelines[0]
    if not isinstance(result, otio.schema.Timeline):
        raise UsageError(f"{name}: holds a {type(result).__name__}, not a timeline; export the sequence")
    return result


def _track_clips(
    track: otio.schema.Track,
    track_name: str,
    file_name: str,
    fps: Fraction,
    global_start: otio.opentime.RationalTime | None,
    problems: list[ClipFinding],
) -> list[CutClip | CutSound]:
    audio = track.kind == otio.schema.TrackKind.Audio
    found: list[CutClip | CutSound] = []
    index = 0
    for child in track:
        if isinstance(child, otio.schema.Gap):
            continue
        record = track.range_of_child(child)
        timecode = _timecode(record.start_time, fps, global_start)
        if isinstance(child, otio.schema.Transition):
            problems.append(
                ClipFinding(
                    file_name,
                    f"{track_name} transition '{child.name or child.transition_type}' at {timecode}",
                    "a transition overlaps the clips either side of it, and farm's edit is cuts only",
                    "replace the transition with a cut",
                )
            )
            continue
        if not isinstance(child, otio.schema.Clip):
            problems.append(
                ClipFinding(
                    file_name,
                    f"{track_name} item '{child.name}' at {timecode}",
                    f"a nested {type(child).__name__} cannot be conformed",
                    "flatten (decompose) nested sequences before exporting",
                )
            )
            continue
        index += 1
        if not child.enabled:
            continue
        metadata = child.metadata.get("farm", {})
        shot_id = metadata.get("shot") if isinstance(metadata, dict) else None
        try:
            source = child.trimmed_range()
        except otio.exceptions.CannotComputeAvailableRangeError:
            problems.append(
                ClipFinding(
                    file_name,
                    f"{track_name} clip {index} '{child.name}' at {timecode}",
                    "has no source range and its media no available range, so what it plays is unknown",
                    "export the timeline with the clips' source in/out",
                )
            )
            continue
        if audio:
            found.append(
                CutSound(
                    track_name,
                    index,
                    child.name,
                    shot_id if isinstance(shot_id, str) else None,
                    _quantised(source.start_time, EDIT_AUDIO_RATE),
                    _quantised(source.duration, EDIT_AUDIO_RATE),
                    timecode,
                )
            )
            continue
        reel = child.metadata.get("cmx_3600", {}).get("reel")
        first = _quantised(record.start_time, fps)
        found.append(
            CutClip(
                track_name,
                index,
                child.name,
                shot_id if isinstance(shot_id, str) else None,
                reel if isinstance(reel, str) else None,
                first,
                first + _quantised(record.duration, fps),
                _quantised(source.start_time, fps),
                _quantised(source.duration, fps),
                timecode,
            )
        )
    return found


def _quantised(time: otio.opentime.RationalTime, rate: Fraction | int) -> int:
    """``time`` in whole units of ``rate`` (frames, or samples at 48 kHz)."""
    return round(time.value_rescaled_to(float(rate)))


def _timecode(at: otio.opentime.RationalTime, fps: Fraction, global_start: otio.opentime.RationalTime | None) -> str:
    rate = float(fps)
    when = at.rescaled_to(rate)
    if global_start is not None:
        when = when + global_start.rescaled_to(rate)
    return otio.opentime.to_timecode(when, rate)
