"""The plain input of assembly: rendered shots in edit order, and where each one's dialogue comes from.

An EditShot is everything the edit needs to know about one rendered shot and nothing about how it was
rendered: its video file (exactly ``frames`` frames at ``fps``), its cache key (for the editor's
metadata), and the slice of the ORIGINAL dialogue track it speaks. Assembly cuts the edit's audio from
those original tracks at 48 kHz, not from each shot's AAC, so cuts are sample-exact and the audio is
encoded once.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from fractions import Fraction
from pathlib import Path

from farm.defaults import EDIT_AUDIO_RATE
from farm.errors import UsageError
from farm.media.audio import AudioSlice


@dataclass(frozen=True)
class SpeakerRegion:
    """One person of a two-shot as the checks see it: who, their portrait, their audio, their face's region."""

    character_id: str
    person_id: str
    reference_image: Path
    audio: AudioSlice
    region: tuple[float, float, float, float]
    """(left, top, right, bottom) fractions of the frame."""

    def pixel_box(self, width: int, height: int) -> tuple[int, int, int, int]:
        """The region in pixels of a ``width`` x ``height`` frame, (left, top, right, bottom)."""
        left, top, right, bottom = self.region
        return round(left * width), round(top * height), round(right * width), round(bottom * height)


@dataclass(frozen=True)
class EditShot:
    shot_id: str
    scene_id: str
    character_id: str
    order: int
    video: Path
    cache_key: str
    frames: int
    fps: Fraction
    audio: AudioSlice
    person_id: str = ""
    """Characters sharing a person are compared by the identity check; empty means the character id."""
    reference_image: Path | None = None
    seed: int = 0
    continues: str | None = None
    from_reference: bool = False
    """Rendered from the reference portrait, not from the last frames of the shot it ``continues``."""
    other_speakers_audio: tuple[AudioSlice, ...] = ()
    """A two-shot's second speaker's slice (as long as ``audio``): the edit lays the mix of both."""
    speakers: tuple[SpeakerRegion, ...] = ()
    """A two-shot's people and where each face is in frame, for per-person checks (identity, lip sync)."""
    seams: tuple[int, ...] = ()
    """Frames (within the shot) where its render joins two pieces: a long take's segments
    (``ShotTask.seam_frames``) or a sliding-window model's windows; the seam checks (colour, identity, lip
    sync) look either side of each. Empty for a shot rendered in one piece."""
    audio_slip: int = 0
    """Frames ``audio`` was shifted against the picture (+: sound late); ``audio`` is already shifted."""

    @property
    def person(self) -> str:
        return self.person_id or self.character_id

    @property
    def duration(self) -> Fraction:
        return Fraction(self.frames) / self.fps

    @property
    def planned_audio(self) -> AudioSlice:
        """The slice the shot list's timecodes name, before any ``audio.slip``: what the gap check reads."""
        return slipped(self.audio, -self.audio_slip, self.fps, self.shot_id)


@dataclass(frozen=True)
class EditSpan:
    """Where one shot sits on the edit's timeline: frames and 48 kHz samples, both half-open."""

    first_frame: int
    end_frame: int
    first_sample: int
    end_sample: int

    @property
    def samples(self) -> int:
        return self.end_sample - self.first_sample


def edit_sample(frame: int, fps: Fraction, rate: int = EDIT_AUDIO_RATE) -> int:
    """The audio sample at which video frame ``frame`` starts on the edit timeline.

    Rounding the cumulative position (never each shot's length) keeps the whole edit exact at rates where
    a frame is not a whole number of samples (29.97 fps: 1601.6 samples), with each shot off by < 1 sample.
    """
    return round(Fraction(frame) * rate / fps)


def edit_spans(shots: Sequence[EditShot], rate: int = EDIT_AUDIO_RATE) -> list[EditSpan]:
    spans = []
    frame = 0
    for shot in shots:
        end = frame + shot.frames
        spans.append(EditSpan(frame, end, edit_sample(frame, shot.fps, rate), edit_sample(end, shot.fps, rate)))
        frame = end
    return spans


def source_start_sample(audio: AudioSlice, rate: int = EDIT_AUDIO_RATE) -> int:
    """The slice's first sample in its track decoded at ``rate`` (16 kHz -> 48 kHz is exactly x3)."""
    return round(Fraction(audio.start_sample) * rate / audio.sample_rate)


def slipped(audio: AudioSlice, slip: int, fps: Fraction, shot_id: str) -> AudioSlice:
    """``audio`` shifted so it plays ``slip`` frames later against the picture (earlier for negative).

    The picture at edit time t then hears what the track had at t - slip: the slice starts that much
    earlier in the track. A slip reaching before the track's start is refused (there is nothing there).
    """
    if slip == 0:
        return audio
    shift = round(Fraction(slip) * audio.sample_rate / fps)
    if audio.start_sample - shift < 0:
        before = float(Fraction(shift - audio.start_sample, audio.sample_rate))
        raise UsageError(
            f"shot {shot_id}: audio.slip {slip} frames reaches {before:.3f} s "
            "before the start of its track; use a smaller slip or a later audio.in"
        )
    return replace(audio, start_sample=audio.start_sample - shift, end_sample=audio.end_sample - shift)


def check_edit_order(shots: Sequence[EditShot]) -> None:
    """Refuse an edit that cannot be assembled: empty, mixed frame rates, or shots without frames."""
    if not shots:
        raise UsageError("the edit has no shots")
    rates = {shot.fps for shot in shots}
    if len(rates) > 1:
        listed = ", ".join(sorted(str(rate) for rate in rates))
        raise UsageError(f"the edit mixes frame rates ({listed}); every shot must be planned at the output fps")
    ids = [shot.shot_id for shot in shots]
    if len(set(ids)) != len(ids):
        raise UsageError("the edit lists a shot twice")
    for shot in shots:
        if shot.frames <= 0:
            raise UsageError(f"shot {shot.shot_id}: has {shot.frames} frames; a shot needs at least one")
