"""The states of jobs, shots and render attempts, and the only transitions between them that farm allows.

The tables here are the whole state machine: every writer in ``farm.db`` moves a row through
``farm.db.machine``, which consults them before touching it, so no state is compared ad hoc elsewhere.
``cached`` is not a state of its own: a shot served from the artifact cache is ``done`` with the
``cached`` flag set (Prefect's "type vs name" split).

A job's life (the phases after rendering are why ``done`` means "the edit exists", not "the shots are
rendered"):

    queued -> rendering -> assembling -> checking -> done
                  ^                          |
                  +-------- retaking <-------+        (and failed | cancelled from any active phase)
"""

from __future__ import annotations

import enum
from collections.abc import Mapping

from farm.errors import EXIT_BAD_INPUT, FarmError


class JobState(enum.StrEnum):
    """Where a job is in its life: waiting, one of its phases (a driver works on it), or finished."""

    QUEUED = "queued"
    """Waiting for a driver (new, resumable after Ctrl-C, or re-queued by a retry)."""
    RENDERING = "rendering"
    """A driver is rendering its shots."""
    ASSEMBLING = "assembling"
    """Every shot is rendered; the edit is being assembled."""
    CHECKING = "checking"
    """The edit is assembled; its continuity checks run."""
    RETAKING = "retaking"
    """The checks asked for retakes: shots were re-keyed and re-queued, and render again next."""
    DONE = "done"
    """The edit exists (its verdict, pass, warn or fail, is the edit's, on the edits row)."""
    FAILED = "failed"
    CANCELLED = "cancelled"


class ShotState(enum.StrEnum):
    """Where one shot is: queued, running (an attempt is current), or finished (done, failed, cancelled)."""

    QUEUED = "queued"
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"
    CANCELLED = "cancelled"


class AttemptState(enum.StrEnum):
    """One render attempt. ``failed``: the attempt raised (bad input, a model error, out of memory; the first
    out-of-memory retries with the low-memory settings without spending an attempt); ``crashed``: the
    infrastructure went away (lost node or worker, dead driver), retried elsewhere without spending one."""

    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CRASHED = "crashed"
    CANCELLED = "cancelled"


JOB_TRANSITIONS: Mapping[JobState, frozenset[JobState]] = {
    JobState.QUEUED: frozenset({JobState.RENDERING, JobState.CANCELLED}),
    # rendering -> assembling | failed follows from the shots (farm.db.machine.settle_job); -> queued when
    # the driver is interrupted (Ctrl-C) and the job waits to be resumed.
    JobState.RENDERING: frozenset({JobState.ASSEMBLING, JobState.FAILED, JobState.CANCELLED, JobState.QUEUED}),
    # assembling -> done: a re-assembly that failed leaves the earlier edit standing; -> queued: a shot's video
    # went missing and the shot renders again.
    JobState.ASSEMBLING: frozenset(
        {JobState.CHECKING, JobState.DONE, JobState.FAILED, JobState.CANCELLED, JobState.QUEUED}
    ),
    # checking -> assembling: a driver lost while checking; its successor assembles a new version.
    JobState.CHECKING: frozenset(
        {JobState.DONE, JobState.RETAKING, JobState.FAILED, JobState.CANCELLED, JobState.QUEUED, JobState.ASSEMBLING}
    ),
    JobState.RETAKING: frozenset({JobState.RENDERING, JobState.CANCELLED, JobState.QUEUED}),
    # A finished job comes back through a retry (-> queued) or a new edit version (-> assembling).
    JobState.DONE: frozenset({JobState.QUEUED, JobState.ASSEMBLING}),
    JobState.FAILED: frozenset({JobState.QUEUED, JobState.ASSEMBLING}),
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

ACTIVE_JOB_STATES = frozenset({JobState.RENDERING, JobState.ASSEMBLING, JobState.CHECKING, JobState.RETAKING})
"""A driver is working on the job (it holds the job's driver lease)."""
FINISHED_JOB_STATES = frozenset({JobState.DONE, JobState.FAILED, JobState.CANCELLED})
RENDERABLE_JOB_STATES = frozenset({JobState.QUEUED, JobState.RETAKING, JobState.RENDERING})
"""A driver renders a job in these states (rendering: it takes over from a driver that was lost)."""
UNFINISHED_SHOT_STATES = frozenset({ShotState.QUEUED, ShotState.RUNNING})


class IllegalTransition(FarmError):
    """A transition the state machine does not allow (e.g. cancelling a job that is already done)."""

    exit_code = EXIT_BAD_INPUT


class LostRace(FarmError):
    """The row was not in the state the caller expected: another worker or driver changed it first."""


def check_job_transition(old: JobState, new: JobState, subject: str) -> None:
    if new not in JOB_TRANSITIONS[old]:
        raise IllegalTransition(_refusal(subject, old, new, JOB_TRANSITIONS[old]))


def check_shot_transition(old: ShotState, new: ShotState, subject: str) -> None:
    if new not in SHOT_TRANSITIONS[old]:
        raise IllegalTransition(_refusal(subject, old, new, SHOT_TRANSITIONS[old]))


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


def _refusal(subject: str, old: enum.StrEnum, new: enum.StrEnum, allowed: frozenset[enum.StrEnum]) -> str:
    if old == new:
        return f"{subject} is already {old}"
    if not allowed:
        return f"{subject} cannot go from {old} to {new}: {old} is final"
    return f"{subject} cannot go from {old} to {new}; from {old} it may go to {_names(allowed)}"


def _names(states: frozenset[enum.StrEnum]) -> str:
    return ", ".join(sorted(str(state) for state in states))
