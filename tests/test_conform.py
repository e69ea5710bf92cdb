"""The round trip: a job's exported timeline, re-cut with the OTIO API as an NLE would, conforms back into a
new shot list whose render re-renders exactly the re-timed shots and plays the new order."""

from __future__ import annotations

import copy
from collections.abc import Iterator
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import opentimelineio as otio
import pytest
import ray
import yaml
from click.testing import CliRunner

from farm.cli import cli
from farm.db.queries import shots_of_job
from farm.errors import ConformError
from farm.jobs import Farm, open_farm
from farm.settings import REPO_ROOT
from farm.shotlist.load import load_shot_list
from farm.shotlist.rewrite import ShotListEdit, rewrite_shot_list, timecode_token
from farm.shotlist.yaml_source import load_located_yaml
from tests.shotlists import TEMPLATE, make_project, replace_once

FPS = 25
RATE = 48_000
SAMPLES_PER_FRAME = RATE // FPS

SHOTS = replace_once(
    replace_once(
        replace_once(TEMPLATE, "width: 480\n  height: 832", "width: 96\n  height: 160"),
        "scenes:",
        "continuity:\n  checks:\n    lip_sync: {enabled: false}\n    identity: {enabled: false}\nscenes:",
    ),
    "        continues: a\n",
    "        continues: a\n"
    "      # d: the producer's last word\n"
    "      - id: d\n"
    "        character: walter\n"
    "        audio: {track: sc01, in: 1, out: 2}\n"
    "        prompt: The second man once more\n",
)
"""The tests' template with a fourth shot (and a comment to keep), small frames and no face checks."""


@dataclass
class RenderedJob:
    farm: Farm
    job_id: int
    shot_list: Path
    otio: Path
    edl: Path | None


@pytest.fixture(scope="module")
def rendered(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RenderedJob]:
    """The four-shot list rendered for real with previz on local Ray, once for the module."""
    root = tmp_path_factory.mktemp("conform")
    shot_list = make_project(root / "project", SHOTS)
    farm = open_farm(
        data_dir=root / "data", database_url=f"sqlite:///{root / 'farm.db'}", models_dir=REPO_ROOT / "models"
    )
    job_id = farm.submit(shot_list).job_id
    edit = farm.render(job_id).edit
    assert edit is not None
    yield RenderedJob(farm, job_id, shot_list, edit.outcome.timeline.otio, edit.outcome.timeline.edl)
    farm.close()
    ray.shutdown()  # the render's local Ray (its agents hold fixed ports) must not outlive the module


def exported(job: RenderedJob) -> otio.schema.Timeline:
    return otio.adapters.read_from_file(str(job.otio))


def clip_of(track: otio.schema.Track, name: str) -> otio.schema.Clip:
    return next(clip for clip in track.find_clips() if clip.metadata["farm"]["shot"] == name)


def trim_head(clip: otio.schema.Clip, units: int) -> None:
    """What an NLE's head trim does: the clip starts ``units`` later in its media and is that much shorter."""
    start, duration = clip.source_range.start_time, clip.source_range.duration
    step = otio.opentime.RationalTime(units, start.rate)
    clip.source_range = otio.opentime.TimeRange(start + step, duration - step)


def write(timeline: otio.schema.Timeline, path: Path, adapter: str = "otio_json") -> Path:
    otio.adapters.write_to_file(timeline, str(path), adapter_name=adapter)
    return path


def conform_files(job: RenderedJob) -> set[str]:
    return {path.name for path in job.shot_list.parent.glob("*.conform-v*.yaml")}


def recut(job: RenderedJob, tmp_path: Path) -> Path:
    """Trim 5 frames off b's head (picture and sound, linked), swap a and b, delete d."""
    timeline = exported(job)
    video, audio = timeline.video_tracks()[0], timeline.audio_tracks()[0]
    trim_head(clip_of(video, "b"), 5)
    trim_head(clip_of(audio, "b"), 5 * SAMPLES_PER_FRAME)
    for track in (video, audio):
        first = track.pop(0)
        track.insert(1, first)
        track.pop(3)
    return write(timeline, tmp_path / "recut.otio")


@pytest.mark.ray
def test_a_recut_conforms_to_a_new_shot_list_whose_render_renders_only_the_trimmed_shot(
    rendered: RenderedJob, tmp_path: Path
) -> None:
    conformed = rendered.farm.conform(rendered.job_id, recut(rendered, tmp_path))

    assert conformed.path == rendered.shot_list.with_name("ep.conform-v2.yaml")
    assert conformed.source == rendered.shot_list and rendered.shot_list.read_text() == SHOTS
    changes = {shot.shot_id: shot for shot in conformed.shots}
    assert [shot.shot_id for shot in conformed.shots] == ["b", "a", "c", "d"]
    assert (changes["b"].old_in, changes["b"].new_in, changes["b"].new_out) == (
        Fraction(236, 100), Fraction(236, 100) + Fraction(5, FPS), Fraction(456, 100),
    )  # fmt: skip
    assert changes["b"].rule == "sound" and changes["b"].moved and changes["a"].moved
    assert not changes["a"].retimed and not changes["c"].retimed and not changes["c"].moved
    assert changes["d"].removed
    assert conformed.renders == ("b",)
    written = conformed.path.read_text()
    assert 'audio: {track: sc01, in: "00:00:02.560", out: "00:00:04:14"}' in written  # its form kept
    assert "# d: the producer's last word" not in written and "- id: d" not in written
    assert written.index("- id: b") < written.index("- id: a") < written.index("- id: c")

    second = rendered.farm.submit(conformed.path)
    result = rendered.farm.render(second.job_id)

    rows = {row.shot_id: row for row in shots_of_job(rendered.farm.database(write=False), second.job_id)}
    assert {shot: (row.cached, row.attempts) for shot, row in rows.items()} == {
        "b": (False, 1), "a": (True, 0), "c": (True, 0),
    }  # fmt: skip
    assert result.outcome.cached == 2
    assert result.edit is not None
    timeline = otio.adapters.read_from_file(str(result.edit.outcome.timeline.otio))
    assert [clip.name for clip in timeline.video_tracks()[0].find_clips()] == ["b", "a", "c"]
    assert clip_of(timeline.video_tracks()[0], "b").source_range.duration.to_frames() == 55 - 5


@pytest.mark.ray
def test_an_untouched_timeline_conforms_to_the_same_cut(rendered: RenderedJob, tmp_path: Path) -> None:
    out = rendered.shot_list.with_name("same.yaml")
    conformed = rendered.farm.conform(rendered.job_id, rendered.otio, output=out)

    assert all(not (shot.retimed or shot.moved or shot.removed) for shot in conformed.shots)
    assert conformed.renders == ()
    assert out.read_text() == SHOTS


@pytest.mark.ray
def test_the_cli_prints_each_shots_change_and_the_next_version_never_overwrites(
    rendered: RenderedJob, tmp_path: Path
) -> None:
    timeline = exported(rendered)
    trim_head(clip_of(timeline.video_tracks()[0], "d"), 10)  # picture only: the sound clip is left as exported
    path = write(timeline, tmp_path / "trimmed.otio")
    first = rendered.shot_list.with_name("ep.conform-v7.yaml")
    first.write_text("# someone else's\n")
    args = ["--data-dir", str(rendered.farm.settings.data_dir), "--db", rendered.farm.settings.database_url]

    result = CliRunner().invoke(cli, ["conform", str(rendered.job_id), str(path), "-o", str(first), *args])

    assert result.exit_code == 2 and "never overwrites" in result.output
    assert first.read_text() == "# someone else's\n"
    first.unlink()
    result = CliRunner().invoke(cli, ["conform", str(rendered.job_id), str(path), *args])

    assert result.exit_code == 0, result.output
    assert "d            in 00:00:01.000 -> 00:00:01.400 (picture)" in result.output
    assert "a            unchanged" in result.output
    assert "renders d and re-uses 3 shots from the cache" in result.output
    written = rendered.shot_list.parent / sorted(conform_files(rendered))[-1]
    assert "audio: {track: sc01, in: 1.4, out: 2}" in written.read_text()
    written.unlink()


def refused(job: RenderedJob, timeline: otio.schema.Timeline, tmp_path: Path) -> ConformError:
    before = conform_files(job)
    with pytest.raises(ConformError) as caught:
        job.farm.conform(job.job_id, write(timeline, tmp_path / "bad.otio"))
    assert conform_files(job) == before  # nothing written
    assert not list(job.shot_list.parent.glob(".*.tmp"))
    return caught.value


@pytest.mark.ray
def test_a_clip_that_matches_no_shot_is_refused_at_the_clip(rendered: RenderedJob, tmp_path: Path) -> None:
    timeline = exported(rendered)
    stranger = timeline.video_tracks()[0][1]
    stranger.name = "pickup_07"
    del stranger.metadata["farm"]

    error = refused(rendered, timeline, tmp_path)

    assert "bad.otio: V1 clip 2 'pickup_07' at " in str(error) and "matches no shot of the shot list" in str(error)


@pytest.mark.ray
def test_a_trim_past_the_dialogue_is_refused_at_the_clip_and_the_shot(rendered: RenderedJob, tmp_path: Path) -> None:
    timeline = exported(rendered)
    trim_head(clip_of(timeline.video_tracks()[0], "a"), -10)  # a starts at 0 s in its track

    error = refused(rendered, timeline, tmp_path)

    (finding,) = error.findings
    assert finding.shot == "a" and finding.shot_list.endswith("ep.yaml:26")
    assert "starts 0.400 s before the start of dialogue track 'sc01'" in finding.message


@pytest.mark.ray
def test_overlapping_clips_a_shot_used_twice_and_a_transition_are_refused_together(
    rendered: RenderedJob, tmp_path: Path
) -> None:
    timeline = exported(rendered)
    video = timeline.video_tracks()[0]
    video.append(copy.deepcopy(video[0]))  # a again at the end
    layered = otio.schema.Track(name="V2", kind=otio.schema.TrackKind.Video)
    layered.append(otio.schema.Gap(source_range=otio.opentime.TimeRange(duration=otio.opentime.RationalTime(60, FPS))))
    layered.append(video.pop(2))  # c over the end of b
    timeline.tracks.append(layered)
    video.insert(1, otio.schema.Transition(name="dissolve", in_offset=otio.opentime.RationalTime(2, FPS)))

    messages = [finding.format() for finding in refused(rendered, timeline, tmp_path).findings]

    assert any("V1 transition 'dissolve'" in message and "cuts only" in message for message in messages), messages
    assert any("V2 clip 1 'c'" in message and "overlaps V1 clip 2 'b'" in message for message in messages), messages
    assert any("V1 clip 4 'a'" in message and "uses the shot again" in message for message in messages), messages


@pytest.mark.ray
def test_picture_and_sound_trimmed_differently_are_refused(rendered: RenderedJob, tmp_path: Path) -> None:
    timeline = exported(rendered)
    trim_head(clip_of(timeline.video_tracks()[0], "c"), 5)
    trim_head(clip_of(timeline.audio_tracks()[0], "c"), 20 * SAMPLES_PER_FRAME)

    (finding,) = refused(rendered, timeline, tmp_path).findings

    assert finding.shot == "c" and "picture and sound were trimmed differently at the head" in finding.message


@pytest.mark.ray
def test_removing_a_continued_shot_drops_the_continuation(rendered: RenderedJob, tmp_path: Path) -> None:
    timeline = exported(rendered)
    for track in timeline.tracks:
        track.pop(0)  # a

    conformed = rendered.farm.conform(
        rendered.job_id, write(timeline, tmp_path / "no-a.otio"), output=rendered.shot_list.with_name("no-a.yaml")
    )

    changes = {shot.shot_id: shot for shot in conformed.shots}
    assert changes["c"].dropped_continues == "a" and changes["a"].removed
    text = conformed.path.read_text()
    assert "continues" not in text and "- id: a" not in text
    assert [shot.id for shot in load_shot_list(conformed.path).shots] == ["b", "c", "d"]


@pytest.mark.ray
def test_an_edl_recut_conforms_by_clip_name(rendered: RenderedJob, tmp_path: Path) -> None:
    if rendered.edl is None:
        pytest.skip("otio-cmx3600-adapter is not installed")
    timeline = otio.adapters.read_from_file(str(rendered.edl), rate=FPS)
    video = timeline.video_tracks()[0]
    clips = list(video.find_clips())
    trim_head(clips[1], 5)  # b
    video.remove(clips[3])  # d

    conformed = rendered.farm.conform(
        rendered.job_id,
        write(timeline, tmp_path / "recut.edl", "cmx_3600"),
        output=rendered.shot_list.with_name("edl.yaml"),
    )

    changes = {shot.shot_id: shot for shot in conformed.shots}
    assert changes["b"].new_in == Fraction(256, 100) and changes["b"].rule == "picture"
    assert changes["d"].removed and conformed.renders == ("b",)


@pytest.mark.ray
def test_an_fcp7_xml_recut_conforms(rendered: RenderedJob, tmp_path: Path) -> None:
    if "fcp_xml" not in {adapter.name for adapter in otio.plugins.ActiveManifest().adapters}:
        pytest.skip("otio-fcp-adapter is not installed")
    timeline = exported(rendered)
    video, audio = timeline.video_tracks()[0], timeline.audio_tracks()[0]
    trim_head(clip_of(video, "b"), 5)
    trim_head(clip_of(audio, "b"), 5 * SAMPLES_PER_FRAME)
    for track in (video, audio):
        track.insert(0, track.pop(1))
    for clip in audio.find_clips():  # an FCP 7 sequence counts sound in frames, not in samples
        source = clip.source_range
        clip.source_range = otio.opentime.TimeRange(
            source.start_time.rescaled_to(FPS), source.duration.rescaled_to(FPS)
        )
        clip.media_reference.available_range = otio.opentime.TimeRange(
            otio.opentime.RationalTime(0, FPS), clip.source_range.end_time_exclusive()
        )

    conformed = rendered.farm.conform(
        rendered.job_id,
        write(timeline, tmp_path / "recut.xml", "fcp_xml"),
        output=rendered.shot_list.with_name("fcp.yaml"),
    )

    assert [shot.shot_id for shot in conformed.shots] == ["b", "a", "c", "d"]
    assert {shot.shot_id: shot.new_in for shot in conformed.shots}["b"] == Fraction(256, 100)
    assert conformed.renders == ("b",)


def test_a_rewrite_keeps_the_demos_comments_and_moves_whole_shot_blocks() -> None:
    path = REPO_ROOT / "shots" / "demo" / "episode.yaml"
    text = path.read_text()
    document = load_located_yaml(path)
    order = ("sc03_010", "sc01_010", "sc01_030", "sc01_020", "sc02_010", "sc02_020", "sc02_030")
    edit = ShotListEdit(
        order, {"sc01_020": {("audio", "in"): Fraction(240, 100)}, "sc02_030": {("audio", "out"): Fraction(6)}}
    )

    rewritten = rewrite_shot_list(text, document, edit, Fraction(FPS))

    assert rewritten.layout_kept
    new = rewritten.text
    assert new.count("\n") == text.count("\n")
    assert {line for line in text.splitlines() if "#" in line} == {line for line in new.splitlines() if "#" in line}
    assert 'audio: {track: sc01, in: "00:00:02.400", out: "00:00:04:14"}' in new
    assert "audio: {track: sc02, in: 5.4, out: 6}" in new
    assert [new.index(f"- id: {shot}") for shot in order] == sorted(new.index(f"- id: {shot}") for shot in order)
    assert new.index("- id: sc03") < new.index("- id: sc01") < new.index("- id: sc02")
    data = yaml.safe_load(new)
    assert [shot["id"] for scene in data["scenes"] for shot in scene["shots"]] == list(order)


@pytest.mark.parametrize(
    ("seconds", "original", "token"),
    [
        (Fraction(256, 100), '"00:00:02.360"', '"00:00:02.560"'),
        (Fraction(116, 25), '"00:00:04:14"', '"00:00:04:16"'),
        (Fraction(1, 48_000) + 1, '"00:00:04:14"', "1.000021"),
        (Fraction(3), "2.36", "3"),
        (Fraction(62, 25), "'00:00:02:00'", "'00:00:02:12'"),
    ],
)
def test_a_new_timecode_keeps_its_form_where_it_can_be_exact(seconds: Fraction, original: str, token: str) -> None:
    assert timecode_token(seconds, Fraction(FPS), original) == token


def demo_clips(fps: Fraction, global_start: otio.opentime.RationalTime | None, tmp_path: Path) -> Path:
    """The demo's picture track as farm lays it out (each shot's frames from 0), with sc03_010's head
    trimmed by 5 frames, written as OTIO with the NLE's record start."""
    shot_list = load_shot_list(REPO_ROOT / "shots" / "demo" / "episode.yaml")
    timeline = otio.schema.Timeline(name="recut", global_start_time=global_start)
    video = otio.schema.Track(name="V1", kind=otio.schema.TrackKind.Video)
    for shot in shot_list.shots:
        frames = round(shot.audio.duration * fps)
        head = 5 if shot.id == "sc03_010" else 0
        clip = otio.schema.Clip(
            name=shot.id,
            source_range=otio.opentime.TimeRange(
                otio.opentime.RationalTime(head, float(fps)), otio.opentime.RationalTime(frames - head, float(fps))
            ),
        )
        clip.metadata["farm"] = {"shot": shot.id}
        video.append(clip)
    timeline.tracks.append(video)
    return write(timeline, tmp_path / "demo.otio")


def test_record_positions_count_from_the_timelines_start_and_a_two_shot_moves_both_cuts(tmp_path: Path) -> None:
    from farm.edit.conform import RenderedCut, recut_shot_list
    from farm.edit.recut import read_recut

    fps = Fraction(FPS)
    shot_list = load_shot_list(REPO_ROOT / "shots" / "demo" / "episode.yaml")
    path = demo_clips(fps, otio.opentime.from_timecode("01:00:00:00", FPS), tmp_path)

    timeline = read_recut(path, fps)

    assert timeline.clips[0].record_start == 0 and timeline.clips[0].timecode == "01:00:00:00"
    rendered = {shot.id: RenderedCut(shot.id, round(shot.audio.duration * fps), 0, 0) for shot in shot_list.shots}
    lengths = {track: Fraction(60) for track in shot_list.audio_tracks}
    recut = recut_shot_list(shot_list, "episode.yaml", timeline, rendered, lengths)
    (two_shot,) = [change for change in recut.shots if change.retimed]
    assert two_shot.shot_id == "sc03_010" and two_shot.rule == "picture"
    assert two_shot.new_in - two_shot.old_in == Fraction(5, FPS)
    assert (two_shot.other_in, two_shot.other_out) == (Fraction(5, FPS), Fraction(12, 10))
    assert recut.order == tuple(shot.id for shot in shot_list.shots)
