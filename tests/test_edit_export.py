"""Editorial export and the QC report: OTIO that otio reads back, an EDL, report.json/html with thumbnails."""

from __future__ import annotations

import json
import shutil
from dataclasses import replace
from fractions import Fraction
from pathlib import Path

import opentimelineio as otio
import pytest

from farm.config import PathMapping
from farm.edit.assemble import assemble_edit
from farm.edit.checks import run_checks
from farm.edit.media_bundle import bundle_media
from farm.edit.otio_export import EditorialOptions, export_timeline, record_start_frames
from farm.edit.path_map import mapped_url
from farm.edit.report import write_report
from farm.errors import UsageError
from farm.shotlist.types import CheckConfig, ContinuityConfig, OutputSpec
from tests.edit_shots import FPS, SAMPLES_PER_FRAME, synthetic_edit

OUTPUT = OutputSpec(FPS, 160, 96)
PICTURE_FREE = ContinuityConfig(
    checks={name: CheckConfig(enabled=False) for name in ("identity", "window_seam", "frozen_frames", "lip_sync")}
)


@pytest.fixture(scope="module")
def flagged_edit(tmp_path_factory: pytest.TempPathFactory):
    """Three shots: a clean cut, then a 200 ms audio gap (a failed check) at the second cut."""
    root = tmp_path_factory.mktemp("export")
    step = 30 * SAMPLES_PER_FRAME
    shots = synthetic_edit(root, [30, 30, 20], [(90, 120, 150)] * 3, starts=[0, step, 2 * step + 3_200])
    out = root / "v001"
    assembly = assemble_edit(shots, out, output=OUTPUT)
    results = run_checks(shots, assembly, PICTURE_FREE)
    return shots, assembly, results, out


def test_timeline_reads_back_with_otio_with_the_right_durations(flagged_edit) -> None:
    shots, assembly, results, out = flagged_edit

    paths = export_timeline(shots, assembly, results, out, name="ep07")
    timeline = otio.adapters.read_from_file(str(paths.otio))

    assert timeline.global_start_time == otio.opentime.RationalTime(90_000, 25)  # 01:00:00:00 by default
    video, audio = timeline.video_tracks()[0], timeline.audio_tracks()[0]
    assert [clip.name for clip in video] == ["s00", "s01", "s02"]
    assert video.duration() == otio.opentime.RationalTime(80, 25)
    assert audio.duration().to_seconds() == pytest.approx(80 / 25, abs=1e-9)
    assert [clip.source_range.duration.value for clip in video] == [30, 30, 20]
    second = video[1]
    assert second.metadata["farm"]["cache_key"] == "key-s01" and second.metadata["farm"]["assembly"] == "copy"
    bundled = Path(otio.url_utils.filepath_from_url(second.media_reference.target_url))
    assert bundled == out / "media" / "s01_v1.mp4" and bundled.samefile(shots[1].video)
    assert second.metadata["farm"]["shot"] == "s01" and second.metadata["farm"]["render"] == str(shots[1].video)
    dialogue = audio[2]
    assert dialogue.source_range.start_time == otio.opentime.RationalTime(
        3 * (2 * 30 * SAMPLES_PER_FRAME + 3_200), 48_000
    )
    track = dialogue.media_reference.available_range
    assert track.start_time.value == 0 and track.duration.rate == 48_000
    assert dialogue.source_range.end_time_exclusive() <= track.end_time_exclusive()
    available = second.media_reference.available_range
    assert available.start_time <= second.source_range.start_time
    assert second.source_range.end_time_exclusive() <= available.end_time_exclusive()


def test_flagged_cuts_become_markers_on_the_clip_after_the_cut(flagged_edit) -> None:
    shots, assembly, results, out = flagged_edit

    timeline = otio.adapters.read_from_file(str(export_timeline(shots, assembly, results, out).otio))

    video = timeline.video_tracks()[0]
    assert [marker.name for marker in video[2].markers] == ["audio_gap"]
    marker = video[2].markers[0]
    assert marker.color == otio.schema.MarkerColor.RED and "gap of 200 ms" in marker.comment
    assert marker.marked_range.start_time == otio.opentime.RationalTime(0, 25)
    assert not video[0].markers and not video[1].markers


def test_the_edl_has_shot_reels_dialogue_events_and_findings_at_record_timecode(flagged_edit) -> None:
    shots, assembly, results, out = flagged_edit

    paths = export_timeline(shots, assembly, results, out)

    assert paths.edl is not None
    text = paths.edl.read_text()
    lines = text.splitlines()
    assert all(len(line) <= 80 for line in lines)
    events = [line.split() for line in lines if line[:3].isdigit()]
    assert [(event[1], event[2]) for event in events] == [
        ("s00", "V"), ("s01", "V"), ("s02", "V"), ("dialogue", "A"), ("dialogue", "A"), ("dialogue", "A"),
    ]  # fmt: skip
    assert [event[6] for event in events[:3]] == ["01:00:00:00", "01:00:01:05", "01:00:02:10"]
    loc = next(line for line in lines if line.startswith("* LOC:"))
    assert loc.startswith("* LOC: 01:00:02:10 RED") and "GAP OF 200 MS" in loc
    edl = otio.adapters.read_from_file(str(paths.edl), rate=25)
    video = edl.video_tracks()[0]
    assert [clip.name for clip in video.find_clips()] == ["s00", "s01", "s02"]
    assert [clip.source_range.duration.value for clip in video.find_clips()] == [30, 30, 20]
    assert len(edl.audio_tracks()[0].find_clips()) == 3


@pytest.mark.parametrize(("name", "adapter"), [("xml", "fcp_xml"), ("aaf", "AAF")])
def test_fcp_xml_and_aaf_read_back_with_shot_names_ranges_and_record_positions(flagged_edit, name, adapter) -> None:
    shots, assembly, results, out = flagged_edit

    paths = export_timeline(shots, assembly, results, out)

    written = getattr(paths, name)
    assert written is not None and written.is_file()
    timeline = otio.adapters.read_from_file(str(written), adapter_name=adapter)
    assert timeline.global_start_time == otio.opentime.RationalTime(90_000, 25)  # 01:00:00:00
    video = list(timeline.video_tracks()[0].find_clips())
    assert [clip.name for clip in video] == ["s00", "s01", "s02"]
    assert [clip.source_range.duration.value for clip in video] == [30, 30, 20]
    assert [clip.range_in_parent().start_time.value for clip in video] == [0, 30, 60]
    assert Path(otio.url_utils.filepath_from_url(video[1].media_reference.target_url)).name == "s01_v1.mp4"
    dialogue = list(timeline.audio_tracks()[0].find_clips())
    assert [clip.source_range.start_time.value for clip in dialogue] == [0, 30, 65]  # 2.6 s into the track
    assert [len(clip.markers) for clip in video] == [0, 0, 1], "the flagged cut's marker, on the shot after it"
    assert video[2].markers[0].name.split(":")[0] == "audio_gap" and "gap of 200 ms" in video[2].markers[0].name
    assert video[2].markers[0].marked_range.start_time.value == 0  # at the cut: the clip's first frame
    if adapter == "AAF":
        assert video[2].markers[0].color == otio.schema.MarkerColor.RED


def test_record_start_is_configurable_and_drop_frame_only_where_it_exists(flagged_edit) -> None:
    shots, assembly, results, out = flagged_edit

    paths = export_timeline(shots, assembly, results, out, options=EditorialOptions(record_start="10:00:00:00"))

    assert otio.adapters.read_from_file(str(paths.otio)).global_start_time.value == 10 * 3600 * 25
    assert "001  s00      V     C        00:00:00:00 00:00:01:05 10:00:00:00" in paths.edl.read_text()
    assert record_start_frames("01:00:00;00", Fraction(30000, 1001)) == 107_892
    with pytest.raises(UsageError, match="drop-frame"):
        record_start_frames("01:00:00;00", Fraction(25))


def test_each_version_names_a_changed_render_as_the_next_take(flagged_edit, tmp_path: Path) -> None:
    shots, _, _, _ = flagged_edit
    first = bundle_media(shots, tmp_path / "v001")
    retaken = [replace(shots[0], cache_key="key-s00-retake"), *shots[1:]]

    second = bundle_media(retaken, tmp_path / "v002")

    assert first["s00"].path.name == "s00_v1.mp4" and second["s00"].path.name == "s00_v2.mp4"
    assert second["s01"].path.name == "s01_v1.mp4" and second["s01"].path.samefile(shots[1].video)


def test_a_path_map_writes_each_platforms_files_with_its_paths(flagged_edit) -> None:
    shots, assembly, results, out = flagged_edit
    root = str(out.parent.resolve())
    share = PathMapping(linux=root, windows="Z:\\farm", macos="/Volumes/farm")

    paths = export_timeline(
        shots, assembly, results, out, options=EditorialOptions(path_map=(share,), platform="linux")
    )

    assert set(paths.platforms) == {"windows", "macos"}
    windows = otio.adapters.read_from_file(str(paths.platforms["windows"] / "edit.otio"))
    urls = [clip.media_reference.target_url for clip in windows.find_clips()]
    assert urls[1] == "file:///Z:/farm/v001/media/s01_v1.mp4"
    assert all(url.startswith("file:///Z:/farm/") for url in urls)
    assert "file:///Z:/farm/v001/media/s01_v1.mp4" in (paths.platforms["windows"] / "edit.xml").read_text()
    aaf = otio.adapters.read_from_file(str(paths.platforms["windows"] / "edit.aaf"))
    assert aaf.find_clips()[0].media_reference.target_url == "file:///Z:/farm/v001/media/s00_v1.mp4"
    macos = otio.adapters.read_from_file(str(paths.platforms["macos"] / "edit.otio"))
    assert macos.find_clips()[0].media_reference.target_url == "file:///Volumes/farm/v001/media/s00_v1.mp4"
    assert not paths.unmapped


def test_mapped_urls_pick_the_longest_root_and_leave_others_alone() -> None:
    shares = (
        PathMapping(linux="/mnt/farm", windows="Z:\\farm"),
        PathMapping(linux="/mnt/farm/edits", windows="\\\\nas\\edits"),
    )

    assert mapped_url("/mnt/farm/a b.mp4", shares, source="linux", target="windows") == "file:///Z:/farm/a%20b.mp4"
    assert mapped_url("/mnt/farm/edits/x.mp4", shares, source="linux", target="windows") == "file://nas/edits/x.mp4"
    assert mapped_url("/srv/other.mp4", shares, source="linux", target="windows") is None
    assert mapped_url("/mnt/farmer/x.mp4", shares, source="linux", target="windows") is None


def test_report_lists_flagged_cuts_first_with_both_thumbnails(flagged_edit) -> None:
    shots, assembly, results, out = flagged_edit

    paths = write_report(shots, assembly, results, out, title="ep07")
    report = json.loads(paths.json.read_text())

    assert report["summary"]["fail"] == 1 and report["summary"]["ok"] is False
    first, second = report["cuts"]
    assert (first["before"], first["after"], first["verdict"]) == ("s01", "s02", "fail")
    assert second["verdict"] == "pass"
    assert report["edit"]["frames"] == 80 and report["edit"]["stream_copied_shots"] == 3
    for side in first["thumbnails"].values():
        assert (out / side).read_bytes()[:2] == b"\xff\xd8"  # JPEG
    page = paths.html.read_text()
    assert page.index("s01 &rarr; s02") < page.index("s00 &rarr; s01")
    assert "gap of 200 ms" in page


def test_report_folder_is_self_contained_when_moved(flagged_edit, tmp_path: Path) -> None:
    shots, assembly, results, out = flagged_edit
    write_report(shots, assembly, results, out)

    moved = tmp_path / "moved"
    shutil.copytree(out, moved)
    page = (moved / "report.html").read_text()

    sources = [part.split("'")[0] for part in page.split("src='")[1:]]
    assert sources and all((moved / source).is_file() for source in sources)
    assert all(not source.startswith(("/", "file:", "http")) for source in sources)


def test_fps_of_the_timeline_is_the_edit_rate(flagged_edit) -> None:
    shots, assembly, results, out = flagged_edit

    timeline = otio.adapters.read_from_file(str(export_timeline(shots, assembly, results, out).otio))

    assert Fraction(timeline.video_tracks()[0][0].source_range.duration.rate) == FPS
