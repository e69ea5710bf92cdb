"""The one word every continuity check, edit, report and the database use for a judgement.

It lives at the bottom of the package because the edit library (which produces verdicts) and the tracking
database (which stores an edit's verdict under a CHECK constraint) must not import each other.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable


class Verdict(enum.StrEnum):
    """A check's judgement of one measurement, and an edit's overall judgement of its checks."""

    PASS = "pass"
    WARN = "warn"
    FAIL = "fail"
    SKIP = "skip"
    """Nothing to measure (audio under one 400 ms loudness block). Not for what could not be measured
    although it must be there (no face found): that warns, or fails."""


def overall_verdict(verdicts: Iterable[Verdict]) -> Verdict:
    """An edit's verdict from its checks': fail if any failed, else warn if any warned, else pass."""
    seen = set(verdicts)
    if Verdict.FAIL in seen:
        return Verdict.FAIL
    return Verdict.WARN if Verdict.WARN in seen else Verdict.PASS
