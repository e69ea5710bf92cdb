"""Assembly: exact frames, sample-exact dialogue from the original tracks, stream copy where possible."""

from __future__ import annotations

import itertools
from fractions import Fraction
from pathlib import Path

import numpy as np
import pyloudnorm
import pytest

from farm.edit.assemble import VideoRoute, assemble_edit
from farm.edit.build import new_edit_dir
from farm.edit.loudness import EditLoudnessMeter, LoudnessMeter, measure_loudness
from farm.edit.timeline import edit_spans
from farm.errors import MediaError, UsageError
from farm.media.audio import decode_audio
from farm.media.video import probe_video, read_frames, stream_start_times
from farm.shotlist.types import OutputSpec
from tests.edit_shots import FPS, RATE, edit_shot, solid_frames, synthetic_edit, tone, write_frames, write_track
from tests.shotlists import DEMO_MEDIA

OUTPUT = OutputSpec(FPS, 160, 96)
EDIT_RATE = 48_000


def decoded_audio(path: Path) -> np.ndarray:
    """The edit's first audio channel as float samples, from t = 0 (edit lists applied)."""
    import av

    chunks = []
    with av.open(str(path)) as container:
        for frame in container.decode(audio=0):
            chunks.append(frame.to_ndarray()[0])
    return np.concatenate(chunks)


def test_matching_shots_are_stream_copied_with_exact_frames(tmp_path: Path) -> None:
    colours = [(200, 30, 30), (30, 200, 30), (30, 30, 200)]
    shots = synthetic_edit(tmp_path, [50, 37, 13], colours)

    result = assemble_edit(shots, tmp_path / "edit", output=OUTPUT)

    info = probe_video(result.path)
    assert info.frames == result.frames == 100
    assert (info.width, info.height, info.fps) == (160, 96, FPS)
    assert [shot.route for shot in result.shots] == [VideoRoute.COPY] * 3
    assert stream_start_times(result.path) == (0.0, 0.0)
    frames = list(read_frames(result.path))
    first_of_each = [frames[0], frames[50], frames[87]]
    last_of_each = [frames[49], frames[86], frames[99]]
    for colour, first, last in zip(colours, first_of_each, last_of_each, strict=True):
        for frame in (first, last):
            assert np.abs(frame[5, 5].astype(int) - colour).max() < 12  # each cut falls on its exact frame
    assert sorted(p.name for p in (tmp_path / "edit").iterdir()) == ["edit.mp4"]


def test_dialogue_is_cut_sample_exactly_from_the_original_track(tmp_path: Path) -> None:
    track = 0.01 * tone(6.0, 300.0)
    impulses = [4_000, 20_000, 52_000, 70_000]  # 16 kHz positions: two inside each shot's slice
    track[impulses] = 0.7
    track_path = write_track(tmp_path / "dialogue.wav", track)
    first = write_frames(tmp_path / "a.mp4", [solid_frames(50, (90, 90, 90))], 50, width=160, height=96)
    second = write_frames(tmp_path / "b.mp4", [solid_frames(40, (90, 90, 90))], 40, width=160, height=96)
    shots = [edit_shot("a", first, 50, track_path, 0), edit_shot("b", second, 40, track_path, 48_000)]

    result = assemble_edit(shots, tmp_path / "edit", output=OUTPUT)

    assert result.audio_samples == 90 * EDIT_RATE // 25
    assert abs(result.audio_duration_in_file - 90 / 25) <= 1 / EDIT_RATE  # the edit list ends it on its sample
    audio = decoded_audio(result.path)
    expected = [3 * 4_000, 3 * 20_000, 96_000 + 3 * (52_000 - 48_000), 96_000 + 3 * (70_000 - 48_000)]
    for position in expected:
        window = np.abs(audio[position - 300 : position + 300])
        assert int(np.argmax(window)) - 300 in (-1, 0, 1), position


def test_odd_shots_are_reencoded_to_the_common_parameters(tmp_path: Path) -> None:
    shots = synthetic_edit(tmp_path, [25, 25, 25])
    narrow = write_frames(tmp_path / "narrow.mp4", [solid_frames(25, (10, 200, 10), 128, 96)], 25, width=128, height=96)
    other_crf = write_frames(tmp_path / "crf.mp4", [solid_frames(25, (10, 10, 200))], 25, width=160, height=96, crf=30)
    shots[1] = edit_shot("narrow", narrow, 25, shots[1].audio.path, shots[1].audio.start_sample)
    shots[2] = edit_shot("crf30", other_crf, 25, shots[2].audio.path, shots[2].audio.start_sample)

    result = assemble_edit(shots, tmp_path / "edit", output=OUTPUT)

    routes = {shot.shot_id: shot for shot in result.shots}
    assert routes["s00"].route == VideoRoute.COPY
    assert routes["narrow"].route == VideoRoute.REENCODE and any("width" in r for r in routes["narrow"].reasons)
    assert routes["crf30"].route == VideoRoute.REENCODE and any("SPS/PPS" in r for r in routes["crf30"].reasons)
    info = probe_video(result.path)
    assert (info.frames, info.width, info.height) == (75, 160, 96)
    frame = list(read_frames(result.path))[30]
    assert frame[48, 80, 1] > 150 and frame[48, 2, 1] < 40  # the narrow shot is letterboxed, not stretched


def test_a_shot_with_missing_frames_is_padded_to_its_planned_length(tmp_path: Path) -> None:
    shots = synthetic_edit(tmp_path, [25, 25])
    short = write_frames(tmp_path / "short.mp4", [solid_frames(20, (0, 0, 250))], 20, width=160, height=96)
    shots[1] = edit_shot("short", short, 25, shots[1].audio.path, shots[1].audio.start_sample)

    result = assemble_edit(shots, tmp_path / "edit", output=OUTPUT)

    assert probe_video(result.path).frames == 50
    assert result.shot("short").file_frames == 20
    assert result.shot("short").route == VideoRoute.REENCODE


def test_full_reencode_gives_the_same_timeline(tmp_path: Path) -> None:
    shots = synthetic_edit(tmp_path, [30, 20])

    result = assemble_edit(shots, tmp_path / "edit", output=OUTPUT, reencode_all=True)

    assert result.copied == 0 and result.reencoded == 2
    assert probe_video(result.path).frames == 50


def test_loudness_is_normalised_to_the_target(tmp_path: Path) -> None:
    shots = synthetic_edit(tmp_path, [50, 50], track_samples=tone(5.0, 440.0, amplitude=0.05))

    default = assemble_edit(shots, tmp_path / "default", output=OUTPUT)
    broadcast = assemble_edit(shots, tmp_path / "broadcast", output=OUTPUT, loudness_lufs=-23.0)

    assert default.loudness_before.integrated_lufs == pytest.approx(-26.7, abs=0.3)  # 0.05 sine, as stereo
    assert default.loudness_after.integrated_lufs == pytest.approx(-16.0, abs=0.5)
    assert broadcast.loudness_after.integrated_lufs == pytest.approx(-23.0, abs=0.5)
    assert not default.normalisation.peak_limited


def test_loud_peaks_are_limited_so_the_edit_still_reaches_its_target(tmp_path: Path) -> None:
    speech = decode_audio(DEMO_MEDIA / "sc01_dialogue.wav").astype(np.float32) / 32768
    track = 0.4 * speech  # quieter than -16 LUFS on average, but its plosives still near full scale
    track[::8000] = 0.95
    shots = synthetic_edit(tmp_path, [90, 90], track_samples=track)

    result = assemble_edit(shots, tmp_path / "edit", output=OUTPUT)

    assert result.normalisation.peak_limited
    assert result.loudness_after.integrated_lufs == pytest.approx(-16.0, abs=1.0)
    assert result.loudness_after.true_peak_dbtp is not None and result.loudness_after.true_peak_dbtp <= -0.8


def test_an_existing_edit_is_never_overwritten(tmp_path: Path) -> None:
    shots = synthetic_edit(tmp_path, [10, 10])
    assemble_edit(shots, tmp_path / "edit", output=OUTPUT)
    before = (tmp_path / "edit" / "edit.mp4").read_bytes()

    with pytest.raises(UsageError, match="new edit version"):
        assemble_edit(shots, tmp_path / "edit", output=OUTPUT)
    assert (tmp_path / "edit" / "edit.mp4").read_bytes() == before


def test_a_failed_assembly_leaves_nothing_behind(tmp_path: Path) -> None:
    shots = synthetic_edit(tmp_path, [10, 10])
    shots[1].video.unlink()

    with pytest.raises(MediaError, match="s01"):
        assemble_edit(shots, tmp_path / "edit", output=OUTPUT)
    assert list((tmp_path / "edit").iterdir()) == []


def test_an_edit_folder_left_by_a_crashed_assembly_is_taken_again_empty(tmp_path: Path) -> None:
    assert new_edit_dir(tmp_path / "edits", 1) == tmp_path / "edits" / "v001"
    (tmp_path / "edits" / "v001" / "edit.mp4").write_bytes(b"half an edit")

    assert new_edit_dir(tmp_path / "edits", 1) == tmp_path / "edits" / "v001"
    assert list((tmp_path / "edits" / "v001").iterdir()) == []


def test_spans_stay_exact_at_ntsc_rates(tmp_path: Path) -> None:
    fps = Fraction(30000, 1001)
    track = write_track(tmp_path / "t.wav", np.zeros(RATE))
    shots = [edit_shot(f"s{i}", tmp_path / "x.mp4", frames, track, 0, fps=fps) for i, frames in enumerate([7, 11, 13])]

    spans = edit_spans(shots)

    assert spans[-1].end_sample == round(Fraction(31) / fps * EDIT_RATE)
    for span, shot in zip(spans, shots, strict=True):
        assert abs(span.samples - shot.frames * EDIT_RATE / fps) < 1
    assert all(a.end_sample == b.first_sample for a, b in itertools.pairwise(spans))


def test_streaming_meter_agrees_with_pyloudnorm() -> None:
    rng = np.random.default_rng(3)
    envelope = np.repeat(rng.uniform(0.02, 0.4, 60), EDIT_RATE // 10)  # speech-like level changes
    signal = envelope * rng.standard_normal(len(envelope))
    meter = LoudnessMeter(EDIT_RATE)
    for start in range(0, len(signal), 7_777):  # chunk size unrelated to the 100 ms blocks
        meter.feed(signal[start : start + 7_777])

    reference = pyloudnorm.Meter(EDIT_RATE).integrated_loudness(signal)

    assert meter.integrated() == pytest.approx(reference, abs=0.1)
    short = LoudnessMeter(EDIT_RATE)
    short.feed(signal[: EDIT_RATE // 4])
    assert short.integrated() is None


def test_edit_meter_agrees_with_ffmpeg_ebur128(tmp_path: Path) -> None:
    """The laid edit is measured in-process as ebur128 measures it duplicated to stereo (it prints one
    decimal, hence the tolerances), including the loudest inter-sample peak."""
    rng = np.random.default_rng(5)
    speech = decode_audio(DEMO_MEDIA / "sc01_dialogue.wav", EDIT_RATE).astype(np.float64) / 32768
    envelope = np.repeat(rng.uniform(0.3, 1.0, 2 * len(speech) // (EDIT_RATE // 2) + 1), EDIT_RATE // 2)
    signal = np.tile(speech, 2) * envelope[: 2 * len(speech)]
    signal[EDIT_RATE * 3 : EDIT_RATE * 3 + 2] = [0.9, -0.9]  # an inter-sample peak above the sample peak
    wav = write_track(tmp_path / "laid.wav", signal, rate=EDIT_RATE)
    laid = decode_audio(wav, EDIT_RATE).astype(np.float64) / 32768
    meter = EditLoudnessMeter(EDIT_RATE)
    for start in range(0, len(laid), 7_777):
        meter.feed(laid[start : start + 7_777])

    ours = meter.measure(lambda first, count: laid[first : first + count])
    reference = measure_loudness(wav)

    assert ours.integrated_lufs == pytest.approx(reference.integrated_lufs, abs=0.15)
    assert ours.true_peak_dbtp == pytest.approx(reference.true_peak_dbtp, abs=0.15)
    assert ours.true_peak_dbtp > 20 * np.log10(0.9) + 0.5
    assert ours.loudness_range_lu == pytest.approx(reference.loudness_range_lu, abs=0.3)


def colour_tags(path: Path) -> dict[str, tuple[str, ...]]:
    """The video's colour tags as the container's stream says them and as a decoded frame carries them."""
    import av

    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        context = stream.codec_context
        frame = next(container.decode(stream))
        names = {"primaries": (context.color_primaries, frame.color_primaries)}
        names["transfer"] = (context.color_trc, frame.color_trc)
        names["matrix"] = (context.colorspace, frame.colorspace)
        names["range"] = (context.color_range, frame.color_range)
    return {key: tuple(str(value) for value in values) for key, values in names.items()}


BT709 = {"primaries": ("1", "1"), "transfer": ("1", "1"), "matrix": ("1", "1"), "range": ("1", "1")}
"""ISO/IEC 23091-2 code points: 1 is BT.709 for primaries, transfer and matrix; range 1 is limited (tv)."""


def test_every_shot_and_the_edit_are_tagged_bt709(tmp_path: Path) -> None:
    shots = synthetic_edit(tmp_path, [20, 20])

    result = assemble_edit(shots, tmp_path / "edit", output=OUTPUT)

    assert colour_tags(shots[0].video) == BT709
    assert colour_tags(result.path) == BT709


def test_an_untagged_shot_from_before_the_tags_still_gives_a_tagged_edit(tmp_path: Path) -> None:
    import subprocess

    from farm.media.ffmpeg import ffmpeg_executable

    shots = synthetic_edit(tmp_path, [20, 20])
    untagged = tmp_path / "untagged.mp4"
    subprocess.run(
        [ffmpeg_executable(), "-v", "error", "-f", "lavfi", "-i", "testsrc=size=160x96:rate=25", "-frames:v", "20",
         "-c:v", "libx264", "-pix_fmt", "yuv420p", "-preset", "veryfast", "-crf", "18", str(untagged)],
        check=True,
    )  # fmt: skip
    assert colour_tags(untagged)["primaries"] == ("2", "2")  # unspecified, as shots were before
    shots[1] = edit_shot("old", untagged, 20, shots[1].audio.path, shots[1].audio.start_sample)

    result = assemble_edit(shots, tmp_path / "edit", output=OUTPUT)

    assert colour_tags(result.path) == BT709
