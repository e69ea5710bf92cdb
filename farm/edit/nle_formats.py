"""edit.otio as the NLEs read it: a CMX 3600 EDL, FCP 7 XML (Premiere, Resolve) and AAF (Avid).

Each comes from OpenTimelineIO's own adapter plug-in (``otio-cmx3600-adapter``, ``otio-fcp-adapter``,
``otio-aaf-adapter``), written from one copy of the timeline prepared for them by ``nle_timeline``:

- every range is counted in frames of the edit's rate: the adapters refuse (AAF) or mis-time (FCP XML)
  the dialogue's 48 kHz sample ranges, so a dialogue clip's start is rounded to the nearest frame (its
  length is the shot's, in frames, already);
- a marker's name carries its finding (``audio_gap: gap of 200 ms at the cut``), the text an NLE shows;
- each clip gets an AAF source id derived from what it points at, so the same render is the same
  master clip in every AAF farm writes, and Avid relinks it once.

The EDL is put together here from the adapter's event writer, because its ``write_to_string`` writes the
first track only: the picture events (reels named by shot id) and then the dialogue's, numbered on,
with record timecode from the edit's start (01:00:00:00 unless configured) and each flagged finding as
a ``* LOC:`` line at its record timecode. Every line stays within CMX 3600's 80 columns; media are named
by file name only (an EDL has no room for paths; NLEs relink by reel and clip name).
"""

from __future__ import annotations

import hashlib
import os
import re
import uuid
from collections.abc import Callable
from fractions import Fraction
from pathlib import Path

import opentimelineio as otio

from farm import files

EDL_ADAPTER = "cmx_3600"
FCP_XML_ADAPTER = "fcp_xml"
AAF_ADAPTER = "AAF"
EDL_COLUMNS = 80
REEL_LENGTH = 8
_LOC_PREFIX = len("* LOC: 01:00:00:00 YELLOW  ")
_EVENT_NUMBER = re.compile(r"^(\d{3,})(?=  )")


def installed_adapters() -> set[str]:
    return {adapter.name for adapter in otio.plugins.ActiveManifest().adapters}


def nle_timeline(timeline: otio.schema.Timeline, rate: Fraction) -> otio.schema.Timeline:
    """A copy of ``timeline`` with every range in frames at ``rate``, markers named by their findings and
    AAF source ids on every clip."""
    prepared = timeline.deepcopy()
    fps = float(rate)
    for clip in prepared.find_clips():
        clip.source_range = _in_frames(clip.source_range, rate)
        reference = clip.media_reference
        if isinstance(reference, otio.schema.ExternalReference):
            if reference.available_range is not None:
                reference.available_range = _in_frames(reference.available_range, rate)
            clip.metadata["AAF"] = {"SourceID": _source_id(reference.target_url, clip.name)}
        for marker in clip.markers:
            marker.marked_range = _in_frames(marker.marked_range, rate)
            if marker.comment:
                marker.metadata["fcp_xml"] = {"comment": marker.comment}
                marker.name = f"{marker.name}: {marker.comment}"
    prepared.global_start_time = otio.opentime.RationalTime(round(prepared.global_start_time.value), fps)
    return prepared


def write_fcp_xml(prepared: otio.schema.Timeline, path: Path) -> None:
    _write_atomically(path, lambda temporary: otio.adapters.write_to_file(prepared, temporary, FCP_XML_ADAPTER))


def write_aaf(prepared: otio.schema.Timeline, path: Path) -> None:
    def write(temporary: str) -> None:
        otio.adapters.write_to_file(prepared, temporary, AAF_ADAPTER)
        add_aaf_markers(Path(temporary), prepared)

    _write_atomically(path, write)


AAF_MARKER_RGB = {
    otio.schema.MarkerColor.RED: (65535, 0, 0),
    otio.schema.MarkerColor.ORANGE: (65535, 32767, 0),
    otio.schema.MarkerColor.YELLOW: (65535, 65535, 0),
    otio.schema.MarkerColor.GREEN: (0, 65535, 0),
    otio.schema.MarkerColor.CYAN: (0, 65535, 65535),
    otio.schema.MarkerColor.BLUE: (0, 0, 65535),
    otio.schema.MarkerColor.PURPLE: (32767, 0, 65535),
    otio.schema.MarkerColor.MAGENTA: (65535, 0, 65535),
    otio.schema.MarkerColor.WHITE: (65535, 65535, 65535),
    otio.schema.MarkerColor.BLACK: (0, 0, 0),
}
"""Avid's marker colours as 16-bit RGB (CommentMarkerColor)."""


def add_aaf_markers(path: Path, prepared: otio.schema.Timeline) -> int:
    """Write the picture clips' markers into the AAF at ``path`` the way Media Composer keeps them; returns
    how many.

    The AAF adapter writes none. Avid holds a sequence's markers in an event slot of its composition mob:
    ``DescriptiveMarker`` components at record positions (frames from the sequence's start), each naming
    the picture slot it describes, which carries the same physical track number (V1). The adapter's reader
    attaches them back to the clip under each position.
    """
    import aaf2  # the AAF adapter's own library, present wherever the adapter is

    video = prepared.video_tracks()
    marks = list(_record_markers(video[0])) if video else []
    if not marks:
        return 0
    with aaf2.open(str(path), "rw") as aaf:
        composition = next(iter(aaf.content.toplevel()))
        picture = next(slot for slot in composition.slots if slot.segment.media_kind == "Picture")
        picture["PhysicalTrackNumber"].value = 1
        slot = aaf.create.EventMobSlot()
        slot["EditRate"].value = picture.edit_rate
        slot["SlotID"].value = max(existing.slot_id for existing in composition.slots) + 1
        slot["PhysicalTrackNumber"].value = 1
        sequence = aaf.create.Sequence(media_kind="DescriptiveMetadata")
        for position, length, text, color in marks:
            marker = aaf.create.DescriptiveMarker()
            marker["Position"].value = position
            marker["Length"].value = length
            marker["Comment"].value = text
            marker["CommentMarkerUser"].value = "farm"
            marker["DescribedSlots"].value = {picture.slot_id}
            red, green, blue = AAF_MARKER_RGB.get(color, AAF_MARKER_RGB[otio.schema.MarkerColor.RED])
            marker["CommentMarkerColor"].value = {"red": red, "green": green, "blue": blue}
            sequence.components.append(marker)
        slot.segment = sequence
        composition.slots.append(slot)
    return len(marks)


def _record_markers(track: otio.schema.Track) -> list[tuple[int, int, str, str]]:
    """(record frame, length in frames, text, colour) of every marker on ``track``'s clips, in record order."""
    marks = []
    for clip in track.find_clips():
        start = clip.range_in_parent().start_time
        for marker in clip.markers:
            offset = marker.marked_range.start_time - clip.source_range.start_time
            position = round((start + offset).value)
            marks.append((position, max(1, round(marker.marked_range.duration.value)), marker.name, marker.color))
    return sorted(marks, key=lambda mark: mark[0])


def write_edl(prepared: otio.schema.Timeline, path: Path, *, reels: dict[str, str]) -> None:
    text = edl_text(prepared, reels=reels)
    _write_atomically(path, lambda temporary: Path(temporary).write_text(text, encoding="ascii", errors="replace"))


def edl_text(prepared: otio.schema.Timeline, *, reels: dict[str, str]) -> str:
    """The CMX 3600 EDL of a prepared timeline: picture events, then dialogue events; ``reels``: clip name
    -> reel (8 characters at most)."""
    rate = prepared.tracks[0].duration().rate
    start = prepared.global_start_time
    writer_class = otio.adapters.from_name(EDL_ADAPTER).module().EDLWriter
    tracks = otio.schema.Stack()
    for track in prepared.tracks:
        tracks.append(_edl_track(track, start, reels))
    writer = writer_class(tracks=tracks, rate=rate, style="avid", reelname_len=REEL_LENGTH)
    picture = _events(writer.get_content_for_track_at_index(0, title=None))
    sound = []
    for index, track in enumerate(tracks):
        if track.kind == otio.schema.TrackKind.Audio:
            sound += _events(writer.get_content_for_track_at_index(index, title=None))
    events = _renumbered(picture + sound)
    drop = any(";" in line for line in events if _EVENT_NUMBER.match(line))
    header = [f"TITLE: {_ascii(prepared.name)[: EDL_COLUMNS - 7]}", f"FCM: {'DROP' if drop else 'NON-DROP'} FRAME", ""]
    return "\n".join(_fitted(line) for line in header + events) + "\n"


def reel_names(clip_names: list[str]) -> dict[str, str]:
    """Clip name -> a unique reel of at most 8 letters, digits and underscores: the name itself when it
    fits (a shot id like ``sc01_010``), else its start with a number that keeps it unique."""
    reels: dict[str, str] = {}
    taken: set[str] = set()
    for index, name in enumerate(clip_names, start=1):
        clean = re.sub(r"[^A-Za-z0-9_]", "", name)
        reel = clean if 0 < len(clean) <= REEL_LENGTH else clean[:REEL_LENGTH]
        if not reel or reel in taken:
            suffix = f"{index:03d}"
            reel = f"{clean[: REEL_LENGTH - len(suffix)]}{suffix}"
        taken.add(reel)
        reels[name] = reel
    return reels


def _edl_track(track: otio.schema.Track, start: otio.opentime.RationalTime, reels: dict[str, str]) -> otio.schema.Track:
    """The track as the EDL writer should see it: a leading gap as long as the record start, so record
    timecode counts from it; reels set; media named by file name; markers at record time."""
    copy = otio.schema.Track(name=track.name, kind=track.kind)
    if start.value:
        copy.append(otio.schema.Gap(source_range=otio.opentime.TimeRange(duration=start)))
    for item in track:
        item = item.deepcopy()
        copy.append(item)
        if not isinstance(item, otio.schema.Clip):
            continue
        record = item.range_in_parent().start_time
        item.metadata["cmx_3600"] = {"reel": reels.get(item.name, "AX")}
        reference = item.media_reference
        if isinstance(reference, otio.schema.ExternalReference):
            name = os.path.basename(otio.url_utils.filepath_from_url(reference.target_url))
            item.media_reference = otio.schema.ExternalReference(target_url=name)
        for marker in item.markers:
            offset = marker.marked_range.start_time - item.source_range.start_time
            marker.marked_range = otio.opentime.TimeRange(record + offset, marker.marked_range.duration)
            marker.name = _ascii(marker.name)[: EDL_COLUMNS - _LOC_PREFIX]
    return copy


def _events(content: str) -> list[str]:
    return [line for line in content.splitlines() if line.strip() and not line.startswith("TITLE:")]


def _renumbered(lines: list[str]) -> list[str]:
    numbered, number = [], 0
    for line in lines:
        if _EVENT_NUMBER.match(line):
            number += 1
            line = _EVENT_NUMBER.sub(f"{number:03d}", line, count=1)
        numbered.append(line)
    return numbered


def _fitted(line: str) -> str:
    """A comment line cut to 80 columns (an event line always fits: its fields have fixed widths)."""
    return line if len(line) <= EDL_COLUMNS or not line.startswith("*") else line[:EDL_COLUMNS]


def _ascii(text: str) -> str:
    return text.encode("ascii", "replace").decode()


def _in_frames(span: otio.opentime.TimeRange, rate: Fraction) -> otio.opentime.TimeRange:
    fps = float(rate)
    start = span.start_time.rescaled_to(fps)
    duration = span.duration.rescaled_to(fps)
    return otio.opentime.TimeRange(
        otio.opentime.RationalTime(round(start.value), fps), otio.opentime.RationalTime(round(duration.value), fps)
    )


def _source_id(target_url: str, clip_name: str) -> str:
    """A SMPTE UMID (as the AAF adapter takes it) whose material number is a digest of what the clip shows."""
    material = uuid.UUID(bytes=hashlib.sha256(f"{target_url}\n{clip_name}".encode()).digest()[:16])
    return f"urn:smpte:umid:060a2b34.01010105.01010f20.13000000.{_umid_material(material)}"


def _umid_material(material: uuid.UUID) -> str:
    hexed = material.hex
    return f"{hexed[:8]}.{hexed[8:12]}{hexed[12:16]}.{hexed[16:24]}.{hexed[24:]}"


def _write_atomically(path: Path, write: Callable[[str], object]) -> None:
    temporary = files.temporary_path(path, suffix=path.suffix)
    try:
        write(str(temporary))
        files.publish(temporary, path, fsync=False)
    finally:
        temporary.unlink(missing_ok=True)
