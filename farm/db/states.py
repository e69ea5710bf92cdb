"""The states of jobs, shots and render attempts, and the only transitions between them that farm allows.

The tables here are the whole state machine: ``farm.db.transitions`` consults them before touching a row,
so a state string is never compared ad hoc elsewhere. ``cached`` is not a state of its own: a shot served
from the artifact cache is ``done`` with the ``cached`` flag set (Prefect's "type vs name" split).
"""

from __future__ import annotations

import enum
from collections.abc import Mapping

from farm.errors import EXIT_BAD_INPUT, FarmError


class JobState(enum.StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"
    CANCELLED = "cancelled"


class ShotState(enum.StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"
    CANCELLED = "cancelled"


class AttemptState(enum.StrEnum):
    """One render attempt. ``failed`` is the shot's fault (bad input, model error); ``crashed`` is the
    infrastructure's (lost node, dead driver, out of memory) and is retried without spending the budget."""

    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CRASHED = "crashed"
    CANCELLED = "cancelled"


JOB_TRANSITIONS: Mapping[JobState, frozenset[JobState]] = {
    JobState.QUEUED: frozenset({JobState.RUNNING, JobState.CANCELLED}),
    # running -> queued: the driver was lost and the job waits for another one.
    JobState.RUNNING: frozenset({JobState.DONE, JobState.FAILED, JobState.CANCELLED, JobState.QUEUED}),
    # Finished jobs come back only through a retry or a resume.
    JobState.DONE: frozenset({JobState.QUEUED}),
    JobState.FAILED: frozenset({JobState.QUEUED}),
    JobState.CANCELLED: frozenset({JobState.QUEUED}),
}

SHOT_TRANSITIONS: Mapping[ShotState, frozenset[ShotState]] = {
    # queued -> done is a cache hit (the shot's key already has an artifact); queued -> failed a shot that
    # can never render (the shot it continues failed, or its inputs changed since submission).
    ShotState.QUEUED: frozenset({ShotState.RUNNING, ShotState.DONE, ShotState.CANCELLED, ShotState.FAILED}),
    # running -> queued: the attempt failed or crashed and the shot has attempts left.
    ShotState.RUNNING: frozenset({ShotState.DONE, ShotState.QUEUED, ShotState.FAILED, ShotState.CANCELLED}),
    # done -> queued is a retake; failed/cancelled -> queued a retry.
    ShotState.DONE: frozenset({ShotState.QUEUED}),
    ShotState.FAILED: frozenset({ShotState.QUEUED}),
    ShotState.CANCELLED: frozenset({ShotState.QUEUED}),
}

ATTEMPT_TRANSITIONS: Mapping[AttemptState, frozenset[AttemptState]] = {
    AttemptState.RUNNING: frozenset(
        {AttemptState.SUCCEEDED, AttemptState.FAILED, AttemptState.CRASHED, AttemptState.CANCELLED}
    ),
    AttemptState.SUCCEEDED: frozenset(),
    AttemptState.FAILED: frozenset(),
    AttemptState.CRASHED: frozenset(),
    AttemptState.CANCELLED: frozenset(),
}

ATTEMPT_OUTCOME_SHOT_STATES: Mapping[AttemptState, frozenset[ShotState]] = {
    AttemptState.SUCCEEDED: frozenset({ShotState.DONE}),
    AttemptState.FAILED: frozenset({ShotState.QUEUED, ShotState.FAILED}),
    AttemptState.CRASHED: frozenset({ShotState.QUEUED, ShotState.FAILED}),
    AttemptState.CANCELLED: frozenset({ShotState.CANCELLED, ShotState.QUEUED}),
}
"""Which shot state each attempt outcome may lead to: a succeeded attempt finishes its shot, a failed or
crashed one requeues it (attempts left) or fails it, a cancelled one cancels it (or requeues it)."""

FINISHED_JOB_STATES = frozenset({JobState.DONE, JobState.FAILED, JobState.CANCELLED})
FINISHED_SHOT_STATES = frozenset({ShotState.DONE, ShotState.FAILED, ShotState.CANCELLED})
"""Shots that need no more work unless someone retries them."""


class IllegalTransition(FarmError):
    """A transition the state machine does not allow (e.g. cancelling a job that is already done)."""

    exit_code = EXIT_BAD_INPUT


class LostRace(FarmError):
    """The row was not in the state the caller expected: another worker or driver changed it first."""


def check_job_transition(old: JobState, new: JobState, subject: str) -> None:
    if new not in JOB_TRANSITIONS[old]:
        raise IllegalTransition(f"{subject} cannot go from {old} to {new}; {_allowed(JOB_TRANSITIONS[old], old)}")


def check_shot_transition(old: ShotState, new: ShotState, subject: str) -> None:
    if new not in SHOT_TRANSITIONS[old]:
        raise IllegalTransition(f"{subject} cannot go from {old} to {new}; {_allowed(SHOT_TRANSITIONS[old], old)}")


def check_attempt_outcome(outcome: AttemptState, shot_state: ShotState, subject: str) -> None:
    """An attempt may only end in a finished state, and its outcome must agree with its shot's new state."""
    if outcome not in ATTEMPT_TRANSITIONS[AttemptState.RUNNING]:
        raise IllegalTransition(
            f"{subject} cannot finish as {outcome}; an attempt finishes as one of "
            f"{_names(ATTEMPT_TRANSITIONS[AttemptState.RUNNING])}"
        )
    check_shot_transition(ShotState.RUNNING, shot_state, subject)
    allowed = ATTEMPT_OUTCOME_SHOT_STATES[outcome]
    if shot_state not in allowed:
        raise IllegalTransition(
            f"{subject}: an attempt that {outcome} cannot leave its shot {shot_state}; use one of {_names(allowed)}"
        )


def _allowed(targets: frozenset[enum.StrEnum], old: enum.StrEnum) -> str:
    return f"from {old} it may go to {_names(targets)}" if targets else f"{old} is final"


def _names(states: frozenset[enum.StrEnum]) -> str:
    return ", ".join(sorted(str(state) for state in states))
