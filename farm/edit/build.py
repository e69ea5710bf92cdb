"""Rendered shots -> a reviewed edit: assemble, analyse, check, export the timeline, write the report.

This is what ``farm assemble`` (and the end of ``farm render``) calls, once per edit version; the
retake loop calls it again, into a new version folder, after re-rendering what ``retakes`` names.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from farm import defaults
from farm.edit.analysis import analyse_edit
from farm.edit.assemble import AssemblyResult, assemble_edit
from farm.edit.checks import CheckResult, enabled_checks, needs_faces, run_checks
from farm.edit.otio_export import EditorialOptions, TimelinePaths, export_timeline
from farm.edit.report import ReportPaths, write_report
from farm.edit.retakes import Escalation, RetakePlan, plan_retakes
from farm.edit.timeline import EditShot
from farm.shotlist.types import ContinuityConfig, OutputSpec
from farm.verdicts import Verdict, overall_verdict


@dataclass(frozen=True)
class EditOutcome:
    version_dir: Path
    assembly: AssemblyResult
    results: tuple[CheckResult, ...]
    timeline: TimelinePaths
    report: ReportPaths
    retakes: RetakePlan

    @property
    def verdict(self) -> Verdict:
        """The edit's verdict: fail if any check failed (policy fail, or retake with nothing left to
        retake), else warn if any warned, else pass."""
        return overall_verdict(result.verdict for result in self.results)


def build_edit(
    shots: Sequence[EditShot],
    out_dir: Path,
    *,
    output: OutputSpec,
    continuity: ContinuityConfig | None = None,
    loudness_lufs: float = defaults.LOUDNESS_LUFS,
    true_peak_db: float = defaults.TRUE_PEAK_DB,
    retake_attempts: Mapping[str, int] | None = None,
    escalations: Mapping[str, Sequence[Escalation]] | None = None,
    title: str = "edit",
    on_assembled: Callable[[], None] | None = None,
    editorial: EditorialOptions | None = None,
) -> EditOutcome:
    """Everything for one edit version in ``out_dir``: edit.mp4, edit.otio (+ .edl, .xml, .aaf and the
    shot-named ``media/``), report.json/.html; ``editorial``: record start and path map.

    ``on_assembled`` is called once edit.mp4 exists, before the checks run (the jobs layer moves the job
    from assembling to checking there). ``retake_attempts`` and ``escalations`` are what the retake
    planner needs to know of each shot's history and model (``plan_retakes``).
    """
    continuity = continuity or ContinuityConfig()
    assembly = assemble_edit(shots, out_dir, output=output, loudness_lufs=loudness_lufs, true_peak_db=true_peak_db)
    if on_assembled is not None:
        on_assembled()
    analysis = analyse_edit(shots, faces=needs_faces(enabled_checks(continuity)))
    results = run_checks(shots, assembly, continuity, analysis=analysis)
    retakes = plan_retakes(
        results, shots, max_retakes=continuity.max_retakes, attempts=retake_attempts, escalations=escalations
    )
    timeline = export_timeline(shots, assembly, results, out_dir, name=title, options=editorial)
    report = write_report(shots, assembly, results, out_dir, analysis=analysis, title=title, retakes=retakes)
    return EditOutcome(out_dir, assembly, tuple(results), timeline, report, retakes)


def new_edit_dir(edits_root: Path, version: int) -> Path:
    """Create and return the empty folder ``vNNN`` for edit ``version`` under ``edits_root``.

    The number comes from the database (``farm.db.edits.next_edit_version``), never from the folders
    present, and the caller holds the job's driver lease: a folder already there with that number belongs
    to no recorded edit (an assembly that crashed before recording it) and is removed, so a crash costs no
    version number.
    """
    edits_root.mkdir(parents=True, exist_ok=True)
    folder = edits_root / f"v{version:03d}"
    try:
        folder.mkdir()
    except FileExistsError:
        shutil.rmtree(folder)
        folder.mkdir()
    return folder
