"""Which shots to render again after the continuity checks, and how: a pure function of the results.

A retake changes the seed (derived from the shot's seed and the retake number, so re-running the same
retake gives the same pixels and its cache key is stable). For a look that drifted at a cut (identity,
colour) it also conditions the shot on the previous shot of the same person in the same scene
(``continues``), which carries that shot's last frames and colour into the new render. Each shot gets
at most ``max_retakes`` retakes; a shot that has used them up is reported as exhausted and its check
stays failed.
"""

from __future__ import annotations

import enum
import hashlib
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from farm.edit.checks.base import CheckResult
from farm.edit.timeline import EditShot

LOOK_CHECKS = frozenset({"identity", "colour"})
"""Checks whose failures a continuation from the previous shot of the person can correct."""
SEED_RANGE = 2**31


class RetakeMode(enum.StrEnum):
    NEW_SEED = "new_seed"
    CONTINUE = "continue"


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


@dataclass(frozen=True)
class RetakePlan:
    retakes: tuple[Retake, ...]
    exhausted: tuple[str, ...]
    """Shots that failed a retake check but have no retakes left."""

    @property
    def shot_ids(self) -> tuple[str, ...]:
        return tuple(retake.shot_id for retake in self.retakes)


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
) -> RetakePlan:
    """The retakes the ``results`` ask for; ``attempts`` counts the retakes each shot has had so far.

    ``shots`` are the shots as last rendered (their seeds are the ones to derive from).
    """
    attempts = attempts or {}
    asked: dict[str, list[str]] = defaultdict(list)
    for result in results:
        for shot_id in result.retake:
            if result.check not in asked[shot_id]:
                asked[shot_id].append(result.check)
    by_id = {shot.shot_id: shot for shot in shots}
    retakes: list[Retake] = []
    exhausted: list[str] = []
    for shot in shots:  # edit order, so a continued shot is planned before the shot continuing it
        if shot.shot_id not in asked:
            continue
        done = attempts.get(shot.shot_id, 0)
        if done >= max_retakes:
            exhausted.append(shot.shot_id)
            continue
        checks = tuple(asked[shot.shot_id])
        previous = _previous_of_person(shot, shots) if LOOK_CHECKS.intersection(checks) else None
        continues = shot.continues or previous
        mode = RetakeMode.CONTINUE if continues and continues in by_id and not shot.continues else RetakeMode.NEW_SEED
        retakes.append(
            Retake(
                shot_id=shot.shot_id,
                attempt=done + 1,
                seed=retake_seed(shot.seed, done + 1),
                mode=mode,
                continues=continues,
                checks=checks,
            )
        )
    return RetakePlan(tuple(retakes), tuple(exhausted))


def _previous_of_person(shot: EditShot, shots: Sequence[EditShot]) -> str | None:
    previous = None
    for other in shots:
        if other.shot_id == shot.shot_id:
            return previous
        if other.scene_id == shot.scene_id and other.person == shot.person:
            previous = other.shot_id
    return None
