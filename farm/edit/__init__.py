"""Edit assembly and cross-shot continuity: rendered shots in, edit.mp4 + edit.otio + a QC report out.

The modules, in the order the data flows through them:

- ``timeline``: EditShot, the plain input (a rendered shot and its slice of the original dialogue);
- ``assemble``: edit.mp4, stream-copied where possible, audio laid sample-exact and loudness-normalised;
- ``audio_lay``: the edit's dialogue WAV, each shot's slice of its original track, measured on the way;
- ``loudness``: BS.1770 measurement (a streaming meter, and ffmpeg's ebur128);
- ``analysis``: one decoding pass per shot for the picture checks and thumbnails;
- ``checks``: the registry of continuity checks and their verdicts;
- ``otio_export``: edit.otio (and a CMX 3600 EDL) for editors;
- ``report``: report.json and report.html;
- ``retakes``: which shots to render again, how (by what failed) and why;
- ``build``: all of the above for one edit version.

It knows nothing of jobs or the database: ``farm.jobs`` reads a job's shots and hands them over as
EditShots, and records what comes back.
"""

from farm.edit.assemble import AssemblyResult, assemble_edit
from farm.edit.build import EditOutcome, build_edit, new_edit_dir
from farm.edit.checks import CHECKS, CheckResult, Verdict, run_checks
from farm.edit.otio_export import export_timeline
from farm.edit.report import write_report
from farm.edit.retakes import Escalation, NotRetaken, Retake, RetakeMode, RetakePlan, plan_retakes, retake_seed
from farm.edit.timeline import EditShot

__all__ = [
    "CHECKS",
    "AssemblyResult",
    "CheckResult",
    "EditOutcome",
    "EditShot",
    "Escalation",
    "NotRetaken",
    "Retake",
    "RetakeMode",
    "RetakePlan",
    "Verdict",
    "assemble_edit",
    "build_edit",
    "export_timeline",
    "new_edit_dir",
    "plan_retakes",
    "retake_seed",
    "run_checks",
    "write_report",
]
