"""Conform: map a re-cut timeline back onto the shot list that made it (pure: no files, no database).

Each picture clip is matched to its shot by ``metadata["farm"]["shot"]``, else by its clip name, else by
its EDL reel. The clips' record order becomes the shots' order; a shot with no clip is removed. A trim
maps back to the shot's dialogue cut by these rules:

- **Picture.** The job rendered frames ``[0, frames)`` of each shot. A clip playing source frames
  ``[s, e)`` at the edit's rate moves ``audio.in`` by ``s / fps`` (a head trim of 5 frames: in 0.2 s
  later at 25 fps) and puts ``audio.out`` at ``in + e / fps``. An end the editor did not touch keeps the
  shot list's own timecode.
- **Sound** (preferred: it is sample exact). The dialogue clip of the shot plays samples of the original
  dialogue file at 48 kHz; its first and last sample, against the ones farm exported, move ``audio.in``
  and ``audio.out`` the same way. A sound end that moved wins over the picture; when both moved, they must
  agree within one frame (the clips were trimmed linked), or the clip is refused.

Everything that stops a conform is collected, each located at the clip and at the shot's line, and
raised together as one ConformError: a clip that matches no shot, a shot used twice, clips that
overlap, a cut reaching outside its dialogue track, a scene split by shots of another, a shot placed
before the shot it continues.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from fractions import Fraction
from itertools import pairwise

from farm.defaults import EDIT_AUDIO_RATE
from farm.edit.recut import CutClip, CutSound, RecutTimeline
from farm.errors import ClipFinding, ConformError
from farm.shotlist.types import Shot, ShotList


@dataclass(frozen=True)
class RenderedCut:
    """What the job rendered of one shot, as farm exported it: the baseline a re-cut is measured against."""

    shot_id: str
    frames: int
    first_sample: int
    """The first sample of the exported dialogue clip in its file at 48 kHz (after any ``audio.slip``)."""
    samples: int
    source_start: int = 0
    """The exported picture clip's first source frame (farm exports each shot's media from frame 0)."""


@dataclass(frozen=True)
class ShotChange:
    """One shot of the shot list before and after the conform."""

    shot_id: str
    scene_id: str
    old_position: int
    """1-based place in the edit the job rendered."""
    new_position: int | None
    """1-based place in the re-cut; None when the editor removed the shot."""
    old_in: Fraction
    old_out: Fraction
    new_in: Fraction
    new_out: Fraction
    rule: str
    """Which clip decided the new cut: ``picture``, ``sound``, ``unchanged`` or ``removed``."""
    moved: bool = False
    """Its place among the shots that stay is not the one it had."""
    dropped_continues: str | None = None
    """The shot it continued, when the editor removed that one: it now renders from its portrait."""
    other_in: Fraction | None = None
    other_out: Fraction | None = None
    """A two-shot's second speaker's new cut: moved by as much as the shot's own in and out."""

    @property
    def removed(self) -> bool:
        return self.new_position is None

    @property
    def retimed(self) -> bool:
        return not self.removed and (self.new_in, self.new_out) != (self.old_in, self.old_out)

    def to_json(self) -> dict[str, object]:
        return {
            "shot": self.shot_id,
            "scene": self.scene_id,
            "old_position": self.old_position,
            "new_position": self.new_position,
            "old_in": float(self.old_in),
            "old_out": float(self.old_out),
            "new_in": float(self.new_in),
            "new_out": float(self.new_out),
            "rule": self.rule,
            "retimed": self.retimed,
            "moved": self.moved,
            "removed": self.removed,
            "dropped_continues": self.dropped_continues,
        }


@dataclass(frozen=True)
class Recut:
    """The shot list's shots as the timeline has them: the kept ones in their new order, then the removed."""

    shots: tuple[ShotChange, ...]

    @property
    def order(self) -> tuple[str, ...]:
        return tuple(shot.shot_id for shot in self.shots if not shot.removed)

    @property
    def changed(self) -> bool:
        return any(shot.retimed or shot.moved or shot.removed for shot in self.shots)


def recut_shot_list(
    shot_list: ShotList,
    shot_list_name: str,
    timeline: RecutTimeline,
    rendered: Mapping[str, RenderedCut],
    track_lengths: Mapping[str, Fraction],
) -> Recut:
    """The shot list's shots re-cut as ``timeline`` says; ConformError with every problem if it cannot be.

    ``rendered`` holds each shot's baseline (what the job rendered and exported); ``track_lengths`` each
    dialogue track's length in seconds.
    """
    shots = {shot.id: shot for shot in shot_list.shots}
    problems = _Problems(timeline.name, shot_list_name, shots)
    problems.findings.extend(timeline.problems)
    matched = _match_clips(timeline.clips, shots, problems)
    sounds = _match_sounds(timeline.sounds, shots)
    _check_overlaps(matched, problems)
    fps = shot_list.output.fps
    cuts: dict[str, tuple[Fraction, Fraction, str]] = {}
    for clip, shot in matched:
        cut = _new_cut(clip, shot, rendered[shot.id], sounds.get(shot.id, []), fps, problems)
        if cut is not None:
            _check_within_track(clip, shot, shot.audio.track, cut[0], cut[1], track_lengths, problems)
            if shot.two_shot is not None:
                other = shot.two_shot.audio
                other_in, other_out = _moved_with(other.start, other.end, shot, cut)
                _check_within_track(clip, shot, other.track, other_in, other_out, track_lengths, problems)
            cuts[shot.id] = cut
    order = [shot.id for _, shot in matched]
    _check_scenes_stay_together(matched, problems)
    _check_continuations(matched, shots, problems)
    if problems.findings:
        raise ConformError(problems.findings)
    return _changes(shot_list, order, cuts)


class _Problems:
    def __init__(self, timeline: str, shot_list: str, shots: Mapping[str, Shot]) -> None:
        self.timeline = timeline
        self.shot_list = shot_list
        self.shots = shots
        self.findings: list[ClipFinding] = []

    def add(self, clip: CutClip | CutSound, message: str, hint: str, shot: Shot | None = None) -> None:
        where = f"{self.shot_list}:{shot.line}" if shot is not None else ""
        self.findings.append(ClipFinding(self.timeline, clip.label, message, hint, shot.id if shot else None, where))


def _match_clips(
    clips: Sequence[CutClip], shots: Mapping[str, Shot], problems: _Problems
) -> list[tuple[CutClip, Shot]]:
    matched: list[tuple[CutClip, Shot]] = []
    first_use: dict[str, CutClip] = {}
    for clip in clips:
        shot_id = next((name for name in clip.candidates if name in shots), None)
        if shot_id is None:
            tried = ", ".join(f"'{name}'" for name in clip.candidates) or "no name"
            problems.add(
                clip,
                f"matches no shot of the shot list (tried {tried})",
                "name the clip after its shot id, or remove it from the sequence",
            )
            continue
        if shot_id in first_use:
            problems.add(
                clip,
                f"uses the shot again (first used by {first_use[shot_id].label})",
                "a shot plays once in an edit; remove one of the clips, or add a shot to the shot list",
                shots[shot_id],
            )
            continue
        first_use[shot_id] = clip
        matched.append((clip, shots[shot_id]))
    return matched


def _match_sounds(sounds: Sequence[CutSound], shots: Mapping[str, Shot]) -> dict[str, list[CutSound]]:
    by_shot: dict[str, list[CutSound]] = {}
    for sound in sounds:
        shot_id = next((name for name in sound.candidates if name in shots), None)
        if shot_id is not None:  # sound without a shot (music, a temp track) is not ours to conform
            by_shot.setdefault(shot_id, []).append(sound)
    return by_shot


def _check_overlaps(matched: Sequence[tuple[CutClip, Shot]], problems: _Problems) -> None:
    for (before, _), (after, shot) in pairwise(matched):
        if after.record_start < before.record_end:
            problems.add(
                after,
                f"overlaps {before.label} by {before.record_end - after.record_start} frames",
                "farm's edit is one sequence of cuts; put the clips one after the other on one track",
                shot,
            )


def _new_cut(
    clip: CutClip,
    shot: Shot,
    rendered: RenderedCut,
    sounds: Sequence[CutSound],
    fps: Fraction,
    problems: _Problems,
) -> tuple[Fraction, Fraction, str] | None:
    """The shot's new (in, out) and the rule that decided it, by the module's picture and sound rules."""
    old_in, old_out = shot.audio.start, shot.audio.end
    head = clip.source_start - rendered.source_start
    tail = head + clip.source_frames
    picture_in = old_in + Fraction(head) / fps if head != 0 else old_in
    picture_out = old_in + Fraction(tail) / fps if tail != rendered.frames else old_out
    picture_moved = (picture_in, picture_out) != (old_in, old_out)
    if len(sounds) > 1:
        problems.add(
            sounds[1],
            f"is a second dialogue clip of the shot (the first is {sounds[0].label})",
            "keep one dialogue clip per shot; join the pieces, or cut the shot in two in the shot list",
            shot,
        )
        return None
    if not sounds:
        return picture_in, picture_out, "picture" if picture_moved else "unchanged"
    sound = sounds[0]
    first = sound.first_sample - rendered.first_sample
    last = sound.first_sample + sound.samples - rendered.first_sample
    sound_in = old_in + Fraction(first, EDIT_AUDIO_RATE) if abs(first) > 1 else old_in
    sound_out = old_in + Fraction(last, EDIT_AUDIO_RATE) if abs(last - rendered.samples) > 1 else old_out
    if (sound_in, sound_out) == (old_in, old_out):
        return picture_in, picture_out, "picture" if picture_moved else "unchanged"
    frame = Fraction(1) / fps
    for end, picture, heard, picture_end in (
        ("head", picture_in, sound_in, head != 0),
        ("tail", picture_out, sound_out, tail != rendered.frames),
    ):
        if picture_end and abs(picture - heard) >= frame:
            problems.add(
                clip,
                f"picture and sound were trimmed differently at the {end} "
                f"(picture {float(picture):.3f} s, sound {float(heard):.3f} s in the dialogue track)",
                f"trim {clip.name} and {sound.label} together (linked), or only one of them",
                shot,
            )
            return None
    return sound_in, sound_out, "sound"


def _moved_with(
    start: Fraction, end: Fraction, shot: Shot, cut: tuple[Fraction, Fraction, str]
) -> tuple[Fraction, Fraction]:
    """A two-shot's second cut moved by as much as the shot's own in and out moved."""
    return start + (cut[0] - shot.audio.start), end + (cut[1] - shot.audio.end)


def _check_within_track(
    clip: CutClip,
    shot: Shot,
    track: str,
    new_in: Fraction,
    new_out: Fraction,
    track_lengths: Mapping[str, Fraction],
    problems: _Problems,
) -> None:
    length = track_lengths.get(track)
    if new_in < 0:
        problems.add(
            clip,
            f"starts {float(-new_in):.3f} s before the start of dialogue track '{track}'",
            "trim the head so the clip starts within the dialogue",
            shot,
        )
    if length is not None and new_out > length:
        problems.add(
            clip,
            f"ends at {float(new_out):.3f} s, past the end of dialogue track '{track}' ({float(length):.3f} s)",
            "trim the tail so the clip ends within the dialogue",
            shot,
        )
    if new_out <= new_in:
        problems.add(clip, "plays no dialogue at all", "remove the clip instead of trimming it to nothing", shot)


def _check_scenes_stay_together(matched: Sequence[tuple[CutClip, Shot]], problems: _Problems) -> None:
    """A shot list plays a scene's shots together: a re-cut may reorder scenes and shots within them."""
    finished: set[str] = set()
    current: str | None = None
    for clip, shot in matched:
        if shot.scene_id != current:
            if current is not None:
                finished.add(current)
            current = shot.scene_id
            if current in finished:
                problems.add(
                    clip,
                    f"plays a shot of scene {current} after shots of another scene came between",
                    f"keep scene {current}'s shots together in the sequence, or move the shot to the other "
                    "scene in the shot list first",
                    shot,
                )


def _check_continuations(
    matched: Sequence[tuple[CutClip, Shot]], shots: Mapping[str, Shot], problems: _Problems
) -> None:
    position = {shot.id: index for index, (_, shot) in enumerate(matched)}
    for index, (clip, shot) in enumerate(matched):
        target = shot.continues
        if target is not None and target in position and position[target] > index:
            problems.add(
                clip,
                f"now comes before shot {target}, which it continues (it renders from that shot's last frames)",
                f"put it after {target}, or drop 'continues: {target}' in the shot list",
                shot,
            )


def _changes(shot_list: ShotList, order: Sequence[str], cuts: Mapping[str, tuple[Fraction, Fraction, str]]) -> Recut:
    old = [shot.id for shot in shot_list.shots]
    kept = [shot_id for shot_id in old if shot_id in cuts]
    position = {shot_id: index for index, shot_id in enumerate(order)}
    shots = {shot.id: shot for shot in shot_list.shots}
    changes: list[ShotChange] = []
    for shot_id in [*order, *(shot_id for shot_id in old if shot_id not in cuts)]:
        shot = shots[shot_id]
        start, end, rule = cuts.get(shot_id, (shot.audio.start, shot.audio.end, "removed"))
        continued = shot.continues
        other = (
            _moved_with(shot.two_shot.audio.start, shot.two_shot.audio.end, shot, cuts[shot_id])
            if shot.two_shot is not None and shot_id in cuts
            else (None, None)
        )
        changes.append(
            ShotChange(
                shot_id=shot_id,
                scene_id=shot.scene_id,
                old_position=old.index(shot_id) + 1,
                new_position=position[shot_id] + 1 if shot_id in position else None,
                old_in=shot.audio.start,
                old_out=shot.audio.end,
                new_in=start,
                new_out=end,
                rule=rule,
                moved=shot_id in position and kept.index(shot_id) != position[shot_id],
                dropped_continues=continued if continued and shot_id in cuts and continued not in cuts else None,
                other_in=other[0],
                other_out=other[1],
            )
        )
    return Recut(tuple(changes))
