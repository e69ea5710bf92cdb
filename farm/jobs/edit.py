"""A job's edit: its finished shots from the database in, a checked and recorded edit version out.

The edit library (``farm.edit``) knows nothing of jobs; this module reads a job's shots and their videos,
hands them over as EditShots, moves the job through its phases (assembling, checking, then done or
retaking) and records the version. A failed assembly leaves no version folder and no row, and puts the
job back where it stands without it: done if an earlier edit exists, else failed. Assembly reads the
shots' input copies taken at submit, each checked against its digest (``tasks_reading_inputs``).

Every version records its content key (``farm.edit.content_key``). With ``reuse``, an edit whose key an
earlier version (of any job) already has, and whose files are intact, is not assembled again: the job
gets a new version row that points at those files (``reused_from_id``), and its folder holds only
``reused.json`` naming them. The row is the job's own (its review, its history), the files are shared:
no copy of a minute of video, and nothing claims to have been assembled that was not.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path

from farm import defaults, files
from farm.catalog import ModelCatalog
from farm.db.edits import edits_with_content, next_edit_version
from farm.db.jobs import record_checked_edit, transition_job
from farm.db.kinds import ArtifactKind
from farm.db.products import NewEdit
from farm.db.queries import find_artifact, job_options, job_state, latest_edit, shots_of_job
from farm.db.records import EditInfo
from farm.db.session import Database
from farm.db.states import JobState, ShotState
from farm.edit.build import EditOutcome, build_edit, new_edit_dir
from farm.edit.checks.lipsync import lip_sync_table
from farm.edit.content_key import edit_content_key
from farm.edit.otio_export import EditorialOptions, record_start_frames
from farm.edit.retakes import Escalation, Retake
from farm.edit.timeline import EditShot, SpeakerRegion, slipped
from farm.errors import UsageError
from farm.jobs.retake import escalations_of
from farm.media.snapshots import Snapshot, SnapshotStore
from farm.plan import ShotTask, check_originals, reading_copies
from farm.settings import Settings
from farm.shotlist.types import ContinuityConfig, OutputSpec
from farm.storage import out_of_space, storage_full
from farm.verdicts import Verdict


@dataclass(frozen=True)
class EditFiles:
    """Where an edit version's files are (a re-used version's are the original's)."""

    video: Path
    otio: Path | None
    edl: Path | None
    report: Path | None
    xml: Path | None = None
    aaf: Path | None = None
    media: Path | None = None
    """The folder of shot-named media the editorial files point at."""
    platforms: Mapping[str, Path] = field(default_factory=dict)
    """Platform -> the folder of the editorial files with that platform's paths (``[[path_map]]``)."""


@dataclass(frozen=True)
class JobEdit:
    """One recorded edit version of a job: everything its build produced, or the edit it re-used."""

    job_id: int
    edit_id: int
    version: int
    verdict: Verdict
    outcome: EditOutcome | None
    """What the build produced; None when the version re-uses an existing edit (``reused``)."""
    files: EditFiles
    summary: Mapping[str, object]
    """What the database records of its checks (``edits.summary``): flagged results, retakes, lip sync."""
    content_key: str | None = None
    reused: EditInfo | None = None
    """The edit (of this job or another) whose files this version re-uses; None when it was assembled."""

    @property
    def retakes(self) -> tuple[Retake, ...]:
        """The shots its checks asked to render again (none for a re-used edit: only clean ones are)."""
        return self.outcome.retakes.retakes if self.outcome is not None else ()


def job_edits_dir(settings: Settings, job_id: int) -> Path:
    return settings.edits_dir / f"job-{job_id}"


def assemble_job(
    db: Database,
    settings: Settings,
    job_id: int,
    *,
    loudness_lufs: float = defaults.LOUDNESS_LUFS,
    true_peak_db: float = defaults.TRUE_PEAK_DB,
    retake_attempts: Mapping[str, int] | None = None,
    record_start: str | None = None,
    reuse: bool = False,
    by: str,
) -> JobEdit:
    """Assemble every shot of a finished job into a new edit version, check it, and record it.

    With ``reuse``, an intact edit with the same content key (any job's) is re-used instead: the new
    version points at its files and nothing is assembled (``JobEdit.reused`` names it).

    The job goes assembling -> checking -> done (or retaking, when a check's policy asks for retakes;
    ``farm.jobs.retake.apply_retakes`` queues them). Refused (UsageError, nothing changed) while a shot
    is not done or a video is missing from the artifact store.
    """
    tasks = tasks_reading_inputs(settings, finished_tasks(db, job_id))
    editorial = editorial_options(settings, tasks[0].fps, record_start)
    shots = edit_shots(tasks, {task.shot_id: video_of(db, job_id, task) for task in tasks})
    options = job_options(db, job_id)
    first = tasks[0]
    output = OutputSpec(fps=first.fps, width=first.width, height=first.height)
    continuity = ContinuityConfig.from_json(options.get("continuity", {}))
    escalations = _escalations(settings, tasks)
    title = options.get("title") or f"job {job_id}"
    content_key = edit_content_key(
        shots,
        output=output,
        continuity=continuity,
        loudness_lufs=loudness_lufs,
        true_peak_db=true_peak_db,
        title=title,
        retake_attempts=retake_attempts,
        escalations=escalations,
        editorial={
            "record_start": editorial.record_start,
            "path_map": [str(mapping) for mapping in editorial.path_map],
            "platform": editorial.platform,
        },
    )
    before = job_state(db, job_id)
    if before is not JobState.ASSEMBLING:
        transition_job(db, job_id, JobState.ASSEMBLING, by=by, expected={before}, message="assembling a new edit")
    if reuse:
        original = reusable_edit(db, content_key)
        if original is not None:
            return _record_reused(db, settings, job_id, original, content_key, by=by)
    version = next_edit_version(db, job_id)
    folder = new_edit_dir(job_edits_dir(settings, job_id), version)
    try:
        outcome = build_edit(
            shots,
            folder,
            output=output,
            continuity=continuity,
            loudness_lufs=loudness_lufs,
            true_peak_db=true_peak_db,
            retake_attempts=retake_attempts,
            escalations=escalations,
            editorial=editorial,
            title=title,
            on_assembled=lambda: transition_job(
                db,
                job_id,
                JobState.CHECKING,
                by=by,
                expected={JobState.ASSEMBLING},
                message=f"edit v{version} assembled",
            ),
        )
        edit = NewEdit(
            video_path=str(outcome.assembly.path),
            otio_path=str(outcome.timeline.otio),
            report_path=str(outcome.report.html),
            verdict=outcome.verdict,
            summary=_summary(outcome),
            version=version,
            content_key=content_key,
        )
        edit_id, _ = record_checked_edit(db, job_id, edit, retaking=bool(outcome.retakes.retakes), by=by)
    except BaseException as exc:
        shutil.rmtree(folder, ignore_errors=True)  # a failed assembly leaves no half-written version
        if isinstance(exc, Exception) and out_of_space(exc):
            # The storage's fault, not the edit's: the job stays assembling for the driver to try again
            # once there is room (farm.jobs.run), and fails nothing.
            _back_to_assembling(db, job_id, by=by)
            needed = 2 * sum(Path(shot.video).stat().st_size for shot in shots)
            raise storage_full(f"edit v{version} of job {job_id}", folder.parent, exc, needed=needed) from exc
        _abandon(db, job_id, exc, by=by)
        raise
    timeline = outcome.timeline
    edit_files = EditFiles(
        outcome.assembly.path,
        timeline.otio,
        timeline.edl,
        outcome.report.html,
        xml=timeline.xml,
        aaf=timeline.aaf,
        media=timeline.media,
        platforms=dict(timeline.platforms),
    )
    return JobEdit(job_id, edit_id, version, outcome.verdict, outcome, edit_files, edit.summary, content_key)


def reusable_edit(db: Database, content_key: str) -> EditInfo | None:
    """The newest edit with ``content_key`` whose files are all still there (the video at its recorded
    size) and whose checks asked for no retake: one a run may point at instead of assembling again."""
    for candidate in edits_with_content(db, content_key):
        if not candidate.summary.get("retakes") and _intact(candidate):
            return candidate
    return None


def _intact(edit: EditInfo) -> bool:
    video = Path(edit.video_path)
    size = edit.summary.get("video_bytes")
    if not video.is_file() or (isinstance(size, int) and video.stat().st_size != size):
        return False
    others = [
        edit.otio_path,
        edit.report_path,
        *(edit.summary.get(name) for name in ("edl", "fcp_xml", "aaf", "report_json")),
    ]
    return all(Path(str(path)).is_file() for path in others if path)


def _record_reused(
    db: Database, settings: Settings, job_id: int, original: EditInfo, content_key: str, *, by: str
) -> JobEdit:
    """A new version of ``job_id`` that is ``original``'s files: its folder holds only ``reused.json``
    (the folder is still the version's lock on disk), its row points at the files and at ``original``."""
    source_id = original.id
    version = next_edit_version(db, job_id)
    folder = new_edit_dir(job_edits_dir(settings, job_id), version)
    try:
        pointer = {"edit_id": source_id, "content_key": content_key, "video": original.video_path}
        _write_json(folder / "reused.json", {**pointer, "otio": original.otio_path, "report": original.report_path})
        why = f"edit v{version} re-uses edit {source_id} (same content key {content_key[:12]})"
        transition_job(db, job_id, JobState.CHECKING, by=by, expected={JobState.ASSEMBLING}, message=why)
        source = {"edit_id": source_id, "job_id": original.job_id, "version": original.version}
        summary = {**original.summary, "reused_from": source}
        edit = NewEdit(
            video_path=original.video_path,
            otio_path=original.otio_path,
            report_path=original.report_path,
            verdict=original.verdict,
            summary=summary,
            version=version,
            content_key=content_key,
            reused_from_id=source_id,
        )
        edit_id, _ = record_checked_edit(db, job_id, edit, retaking=False, by=by)
    except BaseException as exc:
        shutil.rmtree(folder, ignore_errors=True)
        _abandon(db, job_id, exc, by=by)
        raise
    edit_files = EditFiles(
        Path(original.video_path),
        Path(original.otio_path) if original.otio_path else None,
        _summary_path(original, "edl"),
        Path(original.report_path) if original.report_path else None,
        xml=_summary_path(original, "fcp_xml"),
        aaf=_summary_path(original, "aaf"),
        media=_summary_path(original, "media"),
        platforms={name: Path(str(folder)) for name, folder in dict(original.summary.get("platforms") or {}).items()},
    )
    return JobEdit(job_id, edit_id, version, original.verdict, None, edit_files, summary, content_key, original)


def _summary_path(edit: EditInfo, name: str) -> Path | None:
    value = edit.summary.get(name)
    return Path(str(value)) if value else None


def _write_json(path: Path, document: Mapping[str, object]) -> None:
    files.write_text(path, json.dumps(document, indent=2) + "\n")


def editorial_options(settings: Settings, fps: Fraction, record_start: str | None = None) -> EditorialOptions:
    """The editorial files' record start (``record_start``, else the settings') and path map, the record
    start checked at the edit's rate before anything is assembled; UsageError naming where it was set."""
    chosen = record_start or settings.record_start
    try:
        record_start_frames(chosen, fps)
    except UsageError as exc:
        if record_start:
            raise UsageError(f"--record-start: {exc}") from exc
        if settings.config.record_start == chosen:
            raise UsageError(
                f"{settings.config.where('editorial.record_start')}: editorial.record_start: {exc}"
            ) from exc
        raise UsageError(f"FARM_RECORD_START: {exc}") from exc
    return EditorialOptions(record_start=chosen, path_map=settings.config.path_map)


def _back_to_assembling(db: Database, job_id: int, *, by: str) -> None:
    """A job whose assembly ran out of disk waits, assembling, for the next try."""
    if job_state(db, job_id) is JobState.CHECKING:
        message = "its edit ran out of disk; it is assembled again once there is room"
        transition_job(db, job_id, JobState.ASSEMBLING, by=by, expected={JobState.CHECKING}, message=message)


def _abandon(db: Database, job_id: int, error: BaseException, *, by: str) -> None:
    """Put a job whose assembly failed where it stands without the new version."""
    if isinstance(error, KeyboardInterrupt):
        to, why = JobState.QUEUED, "interrupted while making its edit; resume with farm render --resume"
    elif latest_edit(db, job_id) is not None:
        to, why = JobState.DONE, f"a new edit failed ({error}); the earlier version stands"
    else:
        to, why = JobState.FAILED, f"its edit failed: {error}"
    transition_job(db, job_id, to, by=by, expected={JobState.ASSEMBLING, JobState.CHECKING}, message=why[:2000])


def _escalations(settings: Settings, tasks: Sequence[ShotTask]) -> dict[str, tuple[Escalation, ...]]:
    """The escalation rungs left to each shot whose model is still in the catalog."""
    catalog = ModelCatalog.for_settings(settings)
    return escalations_of([task for task in tasks if task.model in catalog], catalog)


def _summary(outcome: EditOutcome) -> dict[str, object]:
    flagged = [r for r in outcome.results if r.verdict in (Verdict.FAIL, Verdict.WARN)]
    return {
        "checks": len(outcome.results),
        "flagged": [
            {"check": r.check, "subject": r.subject.label, "verdict": r.verdict.value, "message": r.message}
            for r in flagged
        ],
        "retakes": [retake.shot_id for retake in outcome.retakes.retakes],
        "retake_reasons": {retake.shot_id: retake.reason for retake in outcome.retakes.retakes},
        "not_retaken": [entry.to_json() for entry in outcome.retakes.not_retaken],
        "exhausted": list(outcome.retakes.exhausted),
        "lip_sync": lip_sync_table(outcome.results),
        "edl": str(outcome.timeline.edl) if outcome.timeline.edl else None,
        "fcp_xml": str(outcome.timeline.xml) if outcome.timeline.xml else None,
        "aaf": str(outcome.timeline.aaf) if outcome.timeline.aaf else None,
        "media": str(outcome.timeline.media) if outcome.timeline.media else None,
        "platforms": {name: str(folder) for name, folder in outcome.timeline.platforms.items()},
        "report_json": str(outcome.report.json),
        "video_bytes": outcome.assembly.bytes,
    }


def finished_tasks(db: Database, job_id: int) -> list[ShotTask]:
    """The job's tasks in edit order; UsageError naming the shots that are not done yet."""
    rows = shots_of_job(db, job_id)
    unfinished = [row.shot_id for row in rows if row.state is not ShotState.DONE]
    if unfinished:
        listed = ", ".join(unfinished[:10]) + (" ..." if len(unfinished) > 10 else "")
        raise UsageError(
            f"job {job_id} has shots that are not done ({listed}); "
            f"render them first (farm render --resume {job_id}, or farm retry {job_id})"
        )
    return [ShotTask.from_json(row.spec) for row in rows]


def tasks_reading_inputs(settings: Settings, tasks: Sequence[ShotTask]) -> list[ShotTask]:
    """``tasks`` pointing at the input copies taken at submit, each copy checked against its digest; a task
    without copies (a job submitted before they were taken) has its originals checked instead.

    Assembly lays the dialogue under pictures lip-synced to it: a track replaced after the render (with
    silence, a new take) must not make an edit of other audio. MediaError names the file and the shot.
    """
    store = SnapshotStore(settings.inputs_dir)
    verified: dict[Snapshot, Path] = {}
    read = []
    for task in tasks:
        if not task.inputs:
            check_originals(task)
        read.append(reading_copies(task, store, verified))
    return read


def video_of(db: Database, job_id: int, task: ShotTask) -> Path:
    artifact = find_artifact(db, task.cache_key, ArtifactKind.SHOT_VIDEO)
    if artifact is None or not Path(artifact.path).is_file():
        raise UsageError(
            f"job {job_id}: the video of shot {task.shot_id} is missing from the artifact store; "
            f"re-render it with farm retry {job_id} --shot {task.shot_id}, then farm render --resume {job_id}"
        )
    return Path(artifact.path)


def edit_shots(
    tasks: Sequence[ShotTask], videos: Mapping[str, Path], *, persons: Mapping[str, str] | None = None
) -> list[EditShot]:
    """Planned tasks (from a Plan, or rebuilt from the database) in edit order with their videos.

    ``persons`` maps character id -> person, overriding what the tasks carry.
    """
    missing = [task.shot_id for task in tasks if task.shot_id not in videos]
    if missing:
        raise UsageError(f"no rendered video for shot(s) {', '.join(missing)}; render them before assembling")
    persons = persons or {}
    return [
        EditShot(
            shot_id=task.shot_id,
            scene_id=task.scene_id,
            character_id=task.character_id,
            order=task.order,
            video=videos[task.shot_id],
            cache_key=task.cache_key,
            frames=task.frames,
            fps=task.fps,
            audio=slipped(task.audio, task.audio_slip, task.fps, task.shot_id),
            audio_slip=task.audio_slip,
            person_id=persons.get(task.character_id, task.person_id),
            reference_image=task.reference_image,
            seed=task.seed,
            continues=task.continues,
            from_reference=task.from_reference,
            other_speakers_audio=tuple(speaker.audio for speaker in task.two_shot.speakers[1:])
            if task.two_shot
            else (),
            speakers=tuple(
                SpeakerRegion(
                    speaker.character_id,
                    persons.get(speaker.character_id, speaker.person_id),
                    speaker.reference_image,
                    speaker.audio,
                    speaker.region,
                )
                for speaker in task.two_shot.speakers
            )
            if task.two_shot
            else (),
            seams=task.seam_frames,
        )
        for task in sorted(tasks, key=lambda task: task.order)
    ]
