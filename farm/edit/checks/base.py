"""What a continuity check is, and how a measurement becomes a verdict.

A check only measures: it yields Measurements (a subject, a value, what it saw, which shots a retake
would re-render). Turning a value into a verdict is the same for every check and lives here: the
value is compared with the threshold (from the shot list's ``continuity:`` section, else the check's
default), and the policy decides what a value over it means: ``warn`` reports it, ``fail`` fails the
edit, ``retake`` fails it and names the shots to re-render (for the checks a re-render can fix). What
should be measurable but was not (a shot in which no face is found) is never a silent skip: it warns, or
fails under the check's ``unmeasured: fail``.
"""

from __future__ import annotations

import enum
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from farm.edit.analysis import EditAnalysis
from farm.edit.assemble import AssemblyResult
from farm.edit.timeline import EditShot
from farm.shotlist.types import CheckConfig, CheckPolicy, ContinuityConfig, UnmeasuredPolicy
from farm.verdicts import Verdict


class SubjectKind(enum.StrEnum):
    CUT = "cut"
    SHOT = "shot"
    PERSON = "person"


@dataclass(frozen=True)
class Subject:
    kind: SubjectKind
    shots: tuple[str, ...]
    """(before, after) for a cut; (shot,) for a shot; (shot,) of the person for a person."""
    label: str

    @classmethod
    def cut(cls, before: str, after: str) -> Subject:
        return cls(SubjectKind.CUT, (before, after), f"cut {before} | {after}")

    @classmethod
    def shot(cls, shot_id: str) -> Subject:
        return cls(SubjectKind.SHOT, (shot_id,), f"shot {shot_id}")

    @classmethod
    def person(cls, person: str, shot_id: str) -> Subject:
        return cls(SubjectKind.PERSON, (shot_id,), f"{person} in {shot_id}")


@dataclass(frozen=True)
class Measurement:
    subject: Subject
    value: float | None
    """None when the check could not measure (see ``skip_reason`` and ``unmeasured``)."""
    detail: str
    """What was measured, in words a producer reads: 'dE00 7.4 between the last 0.5 s of A and ...'."""
    culprits: tuple[str, ...] = ()
    """The shots a retake would re-render."""
    frame: int | None = None
    """Frame of the edit where the finding is (the cut, or the offending frame)."""
    skip_reason: str = ""
    """Why there was nothing to measure (audio under one loudness block): a skip, which is no finding."""
    unmeasured: str = ""
    """Why what must be there could not be measured (no face found): a warning, or a failure."""
    unfixable: str = ""
    """Why a re-render cannot fix what was measured, and what will (a wrong portrait): no retake."""
    details: dict[str, float | str] = field(default_factory=dict)


@dataclass(frozen=True)
class CheckResult:
    check: str
    subject: Subject
    measured: float | None
    threshold: float
    unit: str
    verdict: Verdict
    policy: CheckPolicy
    message: str
    retake: tuple[str, ...]
    """Shots to re-render: only for a failed check whose policy is ``retake``."""
    frame: int | None = None
    details: dict[str, float | str] = field(default_factory=dict)
    unfixable: str = ""
    """Why no re-render can fix this and what will (the measurement's ``unfixable``), when flagged."""

    @property
    def flagged(self) -> bool:
        return self.verdict in (Verdict.WARN, Verdict.FAIL)

    def to_json(self) -> dict[str, object]:
        return {
            "check": self.check,
            "subject": {
                "kind": self.subject.kind.value,
                "shots": list(self.subject.shots),
                "label": self.subject.label,
            },
            "measured": None if self.measured is None else round(self.measured, 4),
            "threshold": self.threshold,
            "unit": self.unit,
            "verdict": self.verdict.value,
            "policy": self.policy.value,
            "message": self.message,
            "retake": list(self.retake),
            "frame": self.frame,
            "details": self.details,
            "unfixable": self.unfixable,
        }


@dataclass(frozen=True)
class CheckContext:
    shots: Sequence[EditShot]
    assembly: AssemblyResult
    analysis: EditAnalysis | None
    continuity: ContinuityConfig | None = None
    """The shot list's continuity section, for checks with limits of their own (lip_sync)."""

    def cuts(self) -> Iterator[tuple[EditShot, EditShot]]:
        """Consecutive shots in edit order."""
        yield from zip(self.shots, self.shots[1:], strict=False)

    def cut_frame(self, after: EditShot) -> int:
        return self.assembly.shot(after.shot_id).span.first_frame


class ContinuityCheck(Protocol):
    name: str
    unit: str
    default_threshold: float
    default_policy: CheckPolicy
    retakeable: bool
    """Whether re-rendering a shot can fix what this check finds (audio comes from the shot list)."""
    needs_pictures: bool
    """Whether it reads the decoded-video analysis (the audio and timing checks do not)."""
    description: str

    def measure(self, context: CheckContext) -> Iterator[Measurement]: ...


def judge(check: ContinuityCheck, measurement: Measurement, config: CheckConfig | None) -> CheckResult:
    """The verdict on one measurement under the shot list's configuration for ``check``."""
    threshold = config.threshold if config and config.threshold is not None else check.default_threshold
    policy = config.policy if config and config.policy is not None else check.default_policy
    value = measurement.value
    if measurement.unmeasured:
        fails = config is not None and config.unmeasured is UnmeasuredPolicy.FAIL
        verdict, outcome = (Verdict.FAIL if fails else Verdict.WARN), f"not measured: {measurement.unmeasured}"
    elif value is None:
        verdict, outcome = Verdict.SKIP, f"not measured: {measurement.skip_reason}"
    elif value <= threshold:
        verdict, outcome = Verdict.PASS, f"within the threshold of {threshold:g} {check.unit}"
    else:
        verdict = Verdict.WARN if policy is CheckPolicy.WARN else Verdict.FAIL
        outcome = f"over the threshold of {threshold:g} {check.unit}"
    unfixable = measurement.unfixable if verdict in (Verdict.WARN, Verdict.FAIL) else ""
    retake: tuple[str, ...] = ()
    if unfixable:
        outcome += f"; {unfixable}"
    elif verdict is Verdict.FAIL and policy is CheckPolicy.RETAKE and value is not None:
        if check.retakeable:
            retake = measurement.culprits
            outcome += f"; retake {', '.join(retake)}"
        else:
            outcome += "; a re-render cannot fix this, correct the shot list"
    return CheckResult(
        check=check.name,
        subject=measurement.subject,
        measured=value,
        threshold=threshold,
        unit=check.unit,
        verdict=verdict,
        policy=policy,
        message=f"{measurement.subject.label}: {measurement.detail}; {outcome}"
        if value is not None
        else f"{measurement.subject.label}: {outcome}",
        retake=retake,
        frame=measurement.frame,
        details=measurement.details,
        unfixable=unfixable,
    )
