"""Continuity checks: a registry of small check objects, run over an assembled edit.

Each check has a name (the key in the shot list's ``continuity.checks``), a unit, a default threshold
and policy, and a ``measure`` method; ``judge`` turns each measurement into a verdict. Adding a check
is adding an object to CHECKS (and its name to the schema's enum).
"""

from __future__ import annotations

from collections.abc import Sequence

from farm.edit.analysis import EditAnalysis, analyse_edit
from farm.edit.assemble import AssemblyResult
from farm.edit.checks.audio import AudioClickCheck, AudioGapCheck, LoudnessJumpCheck
from farm.edit.checks.base import (
    CheckContext,
    CheckResult,
    ContinuityCheck,
    Measurement,
    Subject,
    SubjectKind,
    Verdict,
    judge,
)
from farm.edit.checks.identity import IdentityCheck
from farm.edit.checks.lipsync import LipSyncCheck
from farm.edit.checks.picture import BlackFramesCheck, ColourCheck, FrozenFramesCheck, WindowSeamCheck
from farm.edit.checks.seams import SeamColourCheck, SeamIdentityCheck
from farm.edit.checks.timing import AvDurationCheck, FormatCheck
from farm.edit.timeline import EditShot
from farm.errors import UsageError
from farm.shotlist.types import ContinuityConfig

CHECKS: tuple[ContinuityCheck, ...] = (
    IdentityCheck(),
    ColourCheck(),
    AudioGapCheck(),
    AudioClickCheck(),
    LoudnessJumpCheck(),
    AvDurationCheck(),
    FormatCheck(),
    WindowSeamCheck(),
    BlackFramesCheck(),
    FrozenFramesCheck(),
    LipSyncCheck(),
    SeamColourCheck(),
    SeamIdentityCheck(),
)

__all__ = [
    "CHECKS",
    "CheckContext",
    "CheckResult",
    "ContinuityCheck",
    "Measurement",
    "Subject",
    "SubjectKind",
    "Verdict",
    "check_named",
    "enabled_checks",
    "needs_faces",
    "run_checks",
]


def check_named(name: str) -> ContinuityCheck:
    for check in CHECKS:
        if check.name == name:
            return check
    raise UsageError(f"no continuity check named {name!r}; use one of {', '.join(c.name for c in CHECKS)}")


def enabled_checks(config: ContinuityConfig) -> list[ContinuityCheck]:
    """The checks ``config`` leaves on, in registry order (UsageError for a name no check has)."""
    for name in config.checks:
        check_named(name)
    return [check for check in CHECKS if config.checks.get(check.name) is None or config.checks[check.name].enabled]


def needs_faces(checks: Sequence[ContinuityCheck]) -> bool:
    """Whether the picture analysis must find faces (an identity check is among ``checks``)."""
    return any(check.name in (IdentityCheck.name, SeamIdentityCheck.name) for check in checks)


def run_checks(
    shots: Sequence[EditShot],
    assembly: AssemblyResult,
    config: ContinuityConfig | None = None,
    *,
    analysis: EditAnalysis | None = None,
) -> list[CheckResult]:
    """Every enabled check's results, in registry order then edit order.

    ``analysis`` (one decoding pass per shot) is computed here when a picture check needs it and none
    is given; pass it in to share it with the report's thumbnails.
    """
    config = config or ContinuityConfig()
    enabled = enabled_checks(config)
    if analysis is None and any(check.needs_pictures for check in enabled):
        analysis = analyse_edit(shots, faces=needs_faces(enabled))
    context = CheckContext(shots, assembly, analysis, config)
    results: list[CheckResult] = []
    for check in enabled:
        config_for_check = config.checks.get(check.name)
        results.extend(judge(check, measurement, config_for_check) for measurement in check.measure(context))
    return results
