"""``farm conform``: bring an editor's re-cut of a job's edit back as a new version of its shot list.

The job says which shot list it rendered (checked by its sha256: a file edited since would not match the
timeline's shots) and, through its shots' specs, exactly what it rendered and exported of each shot: the
baseline that picture and sound trims are measured against (farm.edit.conform has the rules). The new
shot list is written next to the original as ``<name>.conform-vN.yaml`` (the original is never
touched), but only after it validates and plans: its plan's cache keys, compared with the job's, say
which shots a render of it will render again. Any problem writes nothing.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, replace
from fractions import Fraction
from pathlib import Path

from farm.catalog import ModelCatalog
from farm.db.jobs import job_record
from farm.db.queries import latest_edit, shots_of_job
from farm.db.session import Database
from farm.defaults import EDIT_AUDIO_RATE, MODEL_SAMPLE_RATE
from farm.digests import file_sha256
from farm.edit.conform import Recut, RenderedCut, ShotChange, recut_shot_list
from farm.edit.recut import read_recut
from farm.edit.timeline import slipped, source_start_sample
from farm.errors import ShotListError, UsageError
from farm.jobs.planning import plan_file
from farm.media.audio import decode_audio
from farm.paths import display_path
from farm.plan import ShotTask
from farm.settings import Settings
from farm.shotlist.load import load_shot_list
from farm.shotlist.rewrite import ShotListEdit, rewrite_shot_list
from farm.shotlist.types import ShotList
from farm.shotlist.yaml_source import load_located_yaml

__all__ = ["Conformed", "ShotChange", "conform_job", "next_version_path"]

_VERSIONED = re.compile(r"^(?P<stem>.+)\.conform-v(?P<version>\d+)$")


@dataclass(frozen=True)
class Conformed:
    """A conform done: the new shot list written, what changed per shot, what a render of it renders."""

    job_id: int
    timeline: Path
    source: Path
    """The shot list the job rendered (left as it was)."""
    path: Path
    """The new version written next to it."""
    shots: tuple[ShotChange, ...]
    """Every shot: the kept ones in their new order, then the removed ones."""
    renders: tuple[str, ...]
    """The shots a render of ``path`` renders again (their cache keys differ from the job's); the rest
    come from the cache."""
    layout_kept: bool
    """False when the shot list was written as clean YAML, without its comments."""

    def to_json(self) -> dict[str, object]:
        return {
            "job": self.job_id,
            "timeline": str(self.timeline),
            "source": str(self.source),
            "path": str(self.path),
            "layout_kept": self.layout_kept,
            "renders": list(self.renders),
            "shots": [shot.to_json() for shot in self.shots],
        }


def conform_job(
    db: Database, settings: Settings, job_id: int, timeline: Path, *, output: Path | None = None
) -> Conformed:
    """Conform job ``job_id``'s shot list to the re-cut ``timeline``; ConformError (located at the clips
    and the shots) or ShotListError if it cannot be, with nothing written."""
    source = _rendered_shot_list(db, job_id)
    tasks = {row.shot_id: ShotTask.from_json(row.spec) for row in shots_of_job(db, job_id)}
    shot_list = load_shot_list(
        source,
        catalog=ModelCatalog.for_settings(settings),
        max_shot_seconds=settings.max_shot_seconds,
        face_memo=settings.face_memo,
    )
    name = display_path(source)
    recut = recut_shot_list(
        shot_list,
        name,
        read_recut(Path(timeline), shot_list.output.fps),
        _baseline(db, settings, job_id, tasks, shot_list.output.fps),
        _track_lengths(shot_list),
    )
    target = Path(output) if output is not None else next_version_path(source)
    if target.resolve().parent != source.resolve().parent:
        raise UsageError(
            f"{display_path(target)}: write the new shot list next to {name} (its media paths are relative to "
            f"that folder); give --output a name in {display_path(source.parent)}"
        )
    if target.exists():
        raise UsageError(f"{display_path(target)} exists; conform never overwrites a shot list, pick another --output")
    document = load_located_yaml(source, name)
    rewritten = rewrite_shot_list(
        source.read_text(encoding="utf-8"), document, _shot_list_edit(recut, shot_list), shot_list.output.fps
    )
    renders = _write_checked(
        settings, target, rewritten.text, {shot_id: task.cache_key for shot_id, task in tasks.items()}
    )
    return Conformed(job_id, Path(timeline), source, target, recut.shots, renders, rewritten.layout_kept)


def next_version_path(source: Path) -> Path:
    """``ep01.yaml`` -> ``ep01.conform-v2.yaml`` (the original counts as v1); ``ep01.conform-v2.yaml`` ->
    ``ep01.conform-v3.yaml``; the first such name that is free."""
    match = _VERSIONED.match(source.stem)
    stem, version = (match["stem"], int(match["version"]) + 1) if match else (source.stem, 2)
    while (candidate := source.with_name(f"{stem}.conform-v{version}{source.suffix}")).exists():
        version += 1
    return candidate


def _rendered_shot_list(db: Database, job_id: int) -> Path:
    job = job_record(db, job_id)
    source = Path(job.shot_list_path)
    if not source.is_file():
        raise UsageError(f"job {job_id} rendered {source}, which is not there any more; conform needs that shot list")
    if file_sha256(source) != job.shot_list_sha256:
        raise UsageError(
            f"{display_path(source)} changed since job {job_id} rendered it, so the timeline's shots may not be "
            "its shots; conform against the job that rendered the file as it is now (render it first)"
        )
    return source


def _baseline(
    db: Database, settings: Settings, job_id: int, tasks: dict[str, ShotTask], fps: Fraction
) -> dict[str, RenderedCut]:
    """Each shot as farm exported it: read from the job's newest ``edit.otio`` where there is one, so the
    baseline is whatever the exporter wrote; else from the shots' specs, as the exporter writes them."""
    cuts = {shot_id: _rendered_cut(task) for shot_id, task in tasks.items()}
    edit = latest_edit(db, job_id)
    exported = Path(edit.otio_path) if edit is not None and edit.otio_path else None
    if exported is not None and not exported.is_absolute():
        exported = settings.data_dir / exported
    if exported is None or not exported.is_file():
        return cuts
    timeline = read_recut(exported, fps)
    for clip in timeline.clips:
        if clip.shot_id in cuts:
            cuts[clip.shot_id] = replace(cuts[clip.shot_id], source_start=clip.source_start, frames=clip.source_frames)
    for sound in timeline.sounds:
        if sound.shot_id in cuts:
            cuts[sound.shot_id] = replace(cuts[sound.shot_id], first_sample=sound.first_sample, samples=sound.samples)
    return cuts


def _rendered_cut(task: ShotTask) -> RenderedCut:
    """The shot as farm.edit.otio_export wrote it: picture frames [0, frames), dialogue at 48 kHz."""
    audio = slipped(task.audio, task.audio_slip, task.fps, task.shot_id)
    return RenderedCut(
        task.shot_id, task.frames, source_start_sample(audio), round(Fraction(task.frames) * EDIT_AUDIO_RATE / task.fps)
    )


def _track_lengths(shot_list: ShotList) -> dict[str, Fraction]:
    used = {shot.audio.track for shot in shot_list.shots}
    return {
        track_id: Fraction(len(decode_audio(track.file)), MODEL_SAMPLE_RATE)
        for track_id, track in shot_list.audio_tracks.items()
        if track_id in used
    }


def _shot_list_edit(recut: Recut, shot_list: ShotList) -> ShotListEdit:
    shots = {shot.id: shot for shot in shot_list.shots}
    timecodes: dict[str, dict[tuple[str, ...], Fraction]] = {}
    for change in recut.shots:
        if change.removed:
            continue
        shot = shots[change.shot_id]
        ends = {("audio", "in"): (shot.audio.start, change.new_in), ("audio", "out"): (shot.audio.end, change.new_out)}
        if shot.two_shot is not None and change.other_in is not None and change.other_out is not None:
            ends[("two_shot", "audio", "in")] = (shot.two_shot.audio.start, change.other_in)
            ends[("two_shot", "audio", "out")] = (shot.two_shot.audio.end, change.other_out)
        moved = {path: new for path, (old, new) in ends.items() if new != old}
        if moved:
            timecodes[change.shot_id] = moved
    return ShotListEdit(
        order=recut.order,
        timecodes=timecodes,
        drop_continues=frozenset(shot.shot_id for shot in recut.shots if shot.dropped_continues),
    )


def _write_checked(settings: Settings, target: Path, text: str, job_keys: dict[str, str]) -> tuple[str, ...]:
    """Write ``text`` to ``target`` only if it validates and plans; the shots whose keys differ from the job's.

    The text is validated where it will live (its media paths are relative to its folder), as a hidden
    file created with the umask's permissions, then linked into place, which fails rather than overwrite
    a file that appeared meanwhile.
    """
    temporary = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    handle = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as out:
            out.write(text)
        try:
            _, plan = plan_file(settings, temporary)
        except ShotListError as exc:
            shown = display_path(target)
            raise ShotListError([replace(finding, file=shown) for finding in exc.findings]) from exc
        _link_new(temporary, target)
        return tuple(task.shot_id for task in plan.tasks if job_keys.get(task.shot_id) != task.cache_key)
    finally:
        temporary.unlink(missing_ok=True)


def _link_new(temporary: Path, target: Path) -> None:
    """Put ``temporary`` at ``target`` unless something is there (a hard link refuses; where the file system
    has none, a rename after a last look)."""
    try:
        os.link(temporary, target)
    except FileExistsError:
        raise UsageError(f"{display_path(target)} appeared meanwhile; conform never overwrites a shot list") from None
    except OSError:
        if target.exists():
            raise UsageError(
                f"{display_path(target)} appeared meanwhile; conform never overwrites a shot list"
            ) from None
        os.replace(temporary, target)
