"""The producer's status of a job: the words studios track work in, computed from the machine's state.

A producer does not ask "is the job in ``checking``?" but "is the episode ready for me to look at, does it
need another pass, is it signed off?". Kitsu's default task statuses say that (todo, ready, work in
progress, waiting for approval, retake, done), and trackers group statuses into a few kinds (ftrack's
state of a status: not started, in progress, blocked, done); farm computes both from the job's state,
its newest edit's verdict and that edit's review, so nothing new is stored and nothing can disagree.

    job state / newest edit                     producer status        tracker bucket
    cancelled                                    todo                   not started
    queued                                       ready                  not started
    rendering, assembling, checking, retaking    rendering              in progress
    done, edit passed or warned, not reviewed    waiting for approval   in progress
    done, edit failed QC; failed; sent back      retake                 blocked
    done, edit approved                          done                   done
"""

from __future__ import annotations

import enum

from farm.db.kinds import Review
from farm.db.states import ACTIVE_JOB_STATES, JobState
from farm.verdicts import Verdict


class ProducerStatus(enum.StrEnum):
    """Where a job stands for the person who signs it off (Kitsu's vocabulary)."""

    TODO = "todo"
    """Nothing will happen to it: it was cancelled and needs submitting (or retrying) again."""
    READY = "ready"
    """Submitted and waiting for the farm."""
    RENDERING = "rendering"
    """The farm is working on it (rendering, assembling or checking the edit, or retaking shots)."""
    WAITING_FOR_APPROVAL = "wfa"
    """Its newest edit passed the continuity checks (or only warned) and waits for a producer."""
    RETAKE = "retake"
    """Needs another pass: the edit failed QC, the render failed, or a producer sent shots back."""
    DONE = "done"
    """A producer approved its newest edit."""


class TrackerBucket(enum.StrEnum):
    """The kind of a status in a production tracker (ftrack's four states), for syncing and for filters."""

    NOT_STARTED = "not_started"
    IN_PROGRESS = "in_progress"
    BLOCKED = "blocked"
    DONE = "done"


BUCKETS: dict[ProducerStatus, TrackerBucket] = {
    ProducerStatus.TODO: TrackerBucket.NOT_STARTED,
    ProducerStatus.READY: TrackerBucket.NOT_STARTED,
    ProducerStatus.RENDERING: TrackerBucket.IN_PROGRESS,
    ProducerStatus.WAITING_FOR_APPROVAL: TrackerBucket.IN_PROGRESS,
    ProducerStatus.RETAKE: TrackerBucket.BLOCKED,
    ProducerStatus.DONE: TrackerBucket.DONE,
}


def producer_status(state: JobState, edit_verdict: Verdict | None, review: Review | None) -> ProducerStatus:
    """The producer's status of a job in ``state`` whose newest edit has ``edit_verdict`` and ``review``
    (both None before its first edit). A review of an older version does not count: a new version has
    not been looked at yet."""
    if state is JobState.CANCELLED:
        return ProducerStatus.TODO
    if state is JobState.QUEUED:
        return ProducerStatus.READY
    if state in ACTIVE_JOB_STATES:
        return ProducerStatus.RENDERING
    if state is JobState.FAILED or review is Review.RETAKE or edit_verdict is Verdict.FAIL:
        return ProducerStatus.RETAKE
    if review is Review.APPROVED:
        return ProducerStatus.DONE
    return ProducerStatus.WAITING_FOR_APPROVAL
