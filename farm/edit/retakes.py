"""Which shots to render again after the continuity checks, and how: a pure function of the results.

A retake is chosen by what failed, and records why:

- a look that drifted at a cut (identity, colour) in a shot that continues nothing is conditioned on
  the previous shot of the same person in the same scene (``continues``), which carries that shot's
  last frames and colour into the new render, with a new seed;
- a colour jump in a shot that already continues another came in with the continued frames, so the
  shot is rendered from its reference portrait instead (``from_reference``), with its seed;
- anything else gets a new seed, derived from the shot's seed and the retake number (re-running the
  same retake gives the same pixels, and its cache key is stable);
- when ``max_retakes`` such retakes are used up, the shot climbs its model's escalation ladder (more
  steps, then the non-distilled settings: the manifest's ``escalation``), one rung per retake, and
  only then is it reported exhausted, its check left failed.

A failure that no re-render can fix asks for no retake at all (a portrait that is itself another
person's face: the check's finding says to fix the portrait), and is listed as not retaken.
"""

from __future__ import annotations

import enum
import hashlib
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from farm.edit.checks.base import CheckResult
from farm.edit.timeline import EditShot
from farm.shotlist.types import CheckPolicy
from farm.verdicts import Verdict

LOOK_CHECKS = frozenset({"identity", "colour"})
"""Checks whose failures a continuation from the previous shot of the person can correct."""
SEED_RANGE = 2**31


class RetakeMode(enum.StrEnum):
    NEW_SEED = "new_seed"
    CONTINUE = "continue"
    FROM_REFERENCE = "from_reference"
    ESCALATE = "escalate"


@dataclass(frozen=True)
class Escalation:
    """A rung of a shot's model's escalation ladder that would change the shot's recipe."""

    level: int
    """Its place in the manifest's ``escalation`` list, from 1."""
    name: str
    """What it changes, in words: 'more steps (steps 40 -> 60)'."""


@dataclass(frozen=True)
class Retake:
    shot_id: str
    attempt: int
    """1 for the first retake of this shot."""
    seed: int
    mode: RetakeMode
    continues: str | None
    """The shot to condition on (CONTINUE), or the shot's own ``continues`` kept as it was."""
    checks: tuple[str, ...]
    """The checks that asked for it."""
    reason: str = ""
    """Why this retake, and why this way, in words a producer reads."""
    from_reference: bool = False
    """Render without the continued shot's last frames (FROM_REFERENCE, and every retake after one)."""
    escalation: int = 0
    """The escalation rung to render at (ESCALATE, and every retake after one); 0 for none."""

    def to_json(self) -> dict[str, object]:
        return {
            "shot": self.shot_id,
            "attempt": self.attempt,
            "mode": self.mode.value,
            "seed": self.seed,
            "continues": self.continues,
            "from_reference": self.from_reference,
            "escalation": self.escalation,
            "checks": list(self.checks),
            "reason": self.reason,
        }


@dataclass(frozen=True)
class NotRetaken:
    """A shot a failed ``retake`` check did not retake, because no re-render can fix what it found."""

    shot_id: str
    check: str
    reason: str

    def to_json(self) -> dict[str, str]:
        return {"shot": self.shot_id, "check": self.check, "reason": self.reason}


@dataclass(frozen=True)
class RetakePlan:
    retakes: tuple[Retake, ...]
    exhausted: tuple[str, ...]
    """Shots that failed a retake check but have no retakes (seeds or escalation rungs) left."""
    not_retaken: tuple[NotRetaken, ...] = ()

    @property
    def shot_ids(self) -> tuple[str, ...]:
        return tuple(retake.shot_id for retake in self.retakes)

    def to_json(self) -> dict[str, object]:
        return {
            "retakes": [retake.to_json() for retake in self.retakes],
            "exhausted": list(self.exhausted),
            "not_retaken": [entry.to_json() for entry in self.not_retaken],
        }


def retake_seed(seed: int, attempt: int) -> int:
    """A new seed for retake ``attempt`` of a shot rendered with ``seed``: deterministic, well spread."""
    digest = hashlib.sha256(f"farm-retake:{seed}:{attempt}".encode()).digest()
    return int.from_bytes(digest[:8], "big") % SEED_RANGE


def plan_retakes(
    results: Sequence[CheckResult],
    shots: Sequence[EditShot],
    *,
    max_retakes: int,
    attempts: Mapping[str, int] | None = None,
    escalations: Mapping[str, Sequence[Escalation]] | None = None,
) -> RetakePlan:
    """The retakes the ``results`` ask for; ``attempts`` counts the retakes each shot has had so far.

    ``shots`` are the shots as last rendered (their seeds are the ones to derive from); ``escalations``
    holds, per shot, the rungs of its model's ladder above its current recipe that would change it
    (``farm.jobs.retake.escalations_of``): once the new seeds are used up, each retake climbs the first.
    """
    attempts = attempts or {}
    escalations = escalations or {}
    asked: dict[str, list[str]] = defaultdict(list)
    for result in results:
        for shot_id in result.retake:
            if result.check not in asked[shot_id]:
                asked[shot_id].append(result.check)
    retakes: list[Retake] = []
    exhausted: list[str] = []
    for shot in shots:  # edit order, so a continued shot is planned before the shot continuing it
        if shot.shot_id not in asked:
            continue
        done = attempts.get(shot.shot_id, 0)
        checks = tuple(asked[shot.shot_id])
        rungs = tuple(escalations.get(shot.shot_id, ()))
        if done < max_retakes:
            retakes.append(_retake_by_cause(shot, shots, done + 1, max_retakes, checks))
        elif rungs:
            retakes.append(_escalation(shot, done + 1, max_retakes, checks, rungs[0]))
        else:
            exhausted.append(shot.shot_id)
    return RetakePlan(tuple(retakes), tuple(exhausted), _not_retaken(results))


def _retake_by_cause(
    shot: EditShot, shots: Sequence[EditShot], attempt: int, max_retakes: int, checks: tuple[str, ...]
) -> Retake:
    failed = " and ".join(checks)
    retake = f"retake {attempt} of {max_retakes}"
    new_seed = retake_seed(shot.seed, attempt)
    previous = _previous_of_person(shot, shots)
    if "colour" in checks and shot.continues and not shot.from_reference:
        mode, seed, continues, from_reference = RetakeMode.FROM_REFERENCE, shot.seed, shot.continues, True
        reason = (
            f"{failed} failed although it continues {shot.continues}: the jump came in with {shot.continues}'s "
            f"last frames, so {retake} renders from the reference portrait instead (seed {seed} kept)"
        )
    elif LOOK_CHECKS.intersection(checks) and previous and not shot.continues and not shot.from_reference:
        mode, seed, continues, from_reference = RetakeMode.CONTINUE, new_seed, previous, False
        reason = (
            f"{failed} failed: {retake} continues {previous}, the previous shot of {shot.person} in "
            f"{shot.scene_id}, to carry its look over, with new seed {seed}"
        )
    elif "lip_sync" in checks:
        mode, seed, continues, from_reference = RetakeMode.NEW_SEED, new_seed, shot.continues, shot.from_reference
        reason = (
            f"{failed} failed: the mouth lost the audio's timing, so {retake} renders it again with new seed "
            f"{seed} (past the retakes, the model's escalation ladder raises steps and guidance)"
        )
    else:
        mode, seed, continues, from_reference = RetakeMode.NEW_SEED, new_seed, shot.continues, shot.from_reference
        reason = f"{failed} failed: {retake} with new seed {seed}"
    return Retake(shot.shot_id, attempt, seed, mode, continues, checks, reason, from_reference)


def _escalation(shot: EditShot, attempt: int, max_retakes: int, checks: tuple[str, ...], rung: Escalation) -> Retake:
    return Retake(
        shot_id=shot.shot_id,
        attempt=attempt,
        seed=shot.seed,
        mode=RetakeMode.ESCALATE,
        continues=shot.continues,
        checks=checks,
        from_reference=shot.from_reference,
        escalation=rung.level,
        reason=f"{' and '.join(checks)} still failed after {max_retakes} new-seed retake(s): escalate to "
        f"{rung.name}, seed {shot.seed} kept",
    )


def _not_retaken(results: Sequence[CheckResult]) -> tuple[NotRetaken, ...]:
    return tuple(
        NotRetaken(shot_id, result.check, result.unfixable)
        for result in results
        if result.verdict is Verdict.FAIL and result.policy is CheckPolicy.RETAKE and result.unfixable
        for shot_id in result.subject.shots[-1:]
    )


def _previous_of_person(shot: EditShot, shots: Sequence[EditShot]) -> str | None:
    previous = None
    for other in shots:
        if other.shot_id == shot.shot_id:
            return previous
        if other.scene_id == shot.scene_id and other.person == shot.person:
            previous = other.shot_id
    return None
