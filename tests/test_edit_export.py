"""Editorial export and the QC report: OTIO that otio reads back, an EDL, report.json/html with thumbnails."""

from __future__ import annotations

import json
import shutil
from fractions import Fraction
from pathlib import Path

import opentimelineio as otio
import pytest

from farm.edit.assemble import assemble_edit
from farm.edit.checks import run_checks
from farm.edit.otio_export import export_timeline
from farm.edit.report import write_report
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


def test_an_edl_is_written_when_the_cmx_adapter_is_installed(flagged_edit) -> None:
    shots, assembly, results, out = flagged_edit

    paths = export_timeline(shots, assembly, results, out)

    assert paths.edl is not None
    edl = otio.adapters.read_from_file(str(paths.edl), rate=25)
    assert len(list(edl.find_clips())) == 3
    assert edl.duration() == otio.opentime.RationalTime(80, 25)


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
