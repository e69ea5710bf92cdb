"""A two-shot in the edit: each person's identity is read from their own face region, and the edit's
dialogue is the mix of both speakers' tracks."""

from __future__ import annotations

import wave
from dataclasses import replace
from pathlib import Path

import numpy as np

from farm.avatar.base import Speaker
from farm.avatar.two_shot import compose_reference
from farm.edit.assemble import assemble_edit
from farm.edit.audio_lay import decode_track, lay_audio
from farm.edit.checks import Verdict, run_checks
from farm.edit.timeline import EditShot, SpeakerRegion, edit_spans
from farm.media.audio import AudioSlice, mix_speakers
from farm.media.image import load_rgb
from farm.shotlist.types import LAYOUT_FACES, CheckConfig, ContinuityConfig, OutputSpec, TwoShotLayout
from tests.edit_shots import FPS, edit_shot, tone, write_frames, write_track
from tests.shotlists import DEMO_MEDIA

WIDTH, HEIGHT, FRAMES = 480, 416, 10
REGIONS = LAYOUT_FACES[TwoShotLayout.SIDE_BY_SIDE]


def two_shot_video(path: Path, left: Path, right: Path) -> Path:
    speakers = tuple(
        Speaker(name, load_rgb(image), np.zeros(1, np.float32), region)
        for name, image, region in (("a", left, REGIONS[0]), ("b", right, REGIONS[1]))
    )
    still, _ = compose_reference(speakers, TwoShotLayout.SIDE_BY_SIDE.value, WIDTH, HEIGHT)
    return write_frames(path, [still] * FRAMES, FRAMES, width=WIDTH, height=HEIGHT)


def as_two_shot(shot: EditShot, first: Path, second: Path, track: Path, second_start: int) -> EditShot:
    count = shot.audio.end_sample - shot.audio.start_sample
    other = AudioSlice(track.stem, track, second_start, second_start + count, "test")
    speakers = (
        SpeakerRegion("marcus", "marcus", first, shot.audio, REGIONS[0]),
        SpeakerRegion("walter", "walter", second, other, REGIONS[1]),
    )
    return replace(shot, other_speakers_audio=(other,), speakers=speakers)


def test_each_person_of_a_two_shot_is_checked_on_their_own_face_and_the_edit_mixes_their_speech(
    tmp_path: Path,
) -> None:
    marcus, walter = DEMO_MEDIA / "marcus.jpg", DEMO_MEDIA / "walter.jpg"
    track = write_track(tmp_path / "t.wav", tone(2.0, 220.0, 0.2))
    other = write_track(tmp_path / "o.wav", tone(2.0, 330.0, 0.2))
    right = as_two_shot(
        edit_shot("right", two_shot_video(tmp_path / "r.mp4", marcus, walter), FRAMES, track, 0, character="marcus"),
        marcus,
        walter,
        other,
        0,
    )
    swapped = as_two_shot(
        edit_shot(
            "swapped", two_shot_video(tmp_path / "s.mp4", marcus, marcus), FRAMES, track, 6400, character="marcus"
        ),
        marcus,
        walter,
        other,
        6400,
    )
    shots = [replace(right, order=0), replace(swapped, order=1)]
    assembly = assemble_edit(shots, tmp_path / "edit", output=OutputSpec(FPS, WIDTH, HEIGHT))
    config = ContinuityConfig(checks={"identity": CheckConfig()})
    results = [r for r in run_checks(shots, assembly, config) if r.check == "identity"]

    verdicts = {result.subject.label: result.verdict for result in results}
    assert verdicts == {
        "marcus in right": Verdict.PASS,
        "marcus in swapped": Verdict.PASS,
        "walter in right": Verdict.PASS,
        "walter in swapped": Verdict.FAIL,
    }, {r.subject.label: (r.verdict, r.measured) for r in results}

    lay_audio(shots, edit_spans(shots), tmp_path / "laid.wav", tmp_path)
    laid = read_wav(tmp_path / "laid.wav")
    first, second = (read_wav(decode_track(t, tmp_path / f"{t.stem}.48k.wav")) for t in (track, other))
    count = len(laid) // 2
    expected = mix_speakers(np.stack([first[:count], second[:count]]))
    assert count == round(FRAMES / float(FPS) * 48_000)
    np.testing.assert_array_equal(laid[:count], expected)
    assert np.abs(laid[:count].astype(int) - first[:count]).max() > 1000, "the second speaker is missing"


def read_wav(path: Path) -> np.ndarray:
    with wave.open(str(path), "rb") as source:
        return np.frombuffer(source.readframes(source.getnframes()), "<i2")
