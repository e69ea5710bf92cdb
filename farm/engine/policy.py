"""The failure policy: what a failed attempt means for its shot and for the node it ran on.

Pure functions and small value objects, no Ray and no database, so the policy is tested on its own
(``tests/test_engine_policy.py``) and the scheduler only applies its decisions. The messages count down,
Flamenco style: "shot sc01_020 failed 1 time; 2 more failures will fail it".
"""

from __future__ import annotations

import enum
import random
from dataclasses import dataclass, field, replace

from farm import defaults
from farm.db.states import AttemptState, ShotState


class FailureKind(enum.StrEnum):
    CRASH = "crash"
    """The worker, its node or the object store went away; the shot itself is not to blame."""
    OUT_OF_MEMORY = "out_of_memory"
    ERROR = "error"
    """The model or the encoder raised: retried up to the attempt budget."""
    REJECTED = "rejected"
    """The inputs can never render (a non-retryable RenderError): fail without retrying."""
    CANCELLED = "cancelled"
    STORAGE = "storage"
    """A disk filled up: the storage's fault. Dispatch pauses until there is room; no budget is spent."""


@dataclass(frozen=True)
class Failure:
    kind: FailureKind
    error_class: str
    message: str
    path: str = ""
    """For a STORAGE failure, the folder that filled up."""
    reached_model: bool = True
    """False for a shot that waited on its worker behind another one when the worker was lost: it never
    ran, so its crash is not charged to it (the shot that was rendering pays)."""


@dataclass(frozen=True)
class EngineOptions:
    """How a driver renders a job: attempt and crash budgets, blocklisting, workers per model, its clocks."""

    max_attempts: int = defaults.MAX_ATTEMPTS
    """Errors a shot may have before it fails (crashes and out-of-memory retries don't count)."""
    max_crashes: int = defaults.MAX_CRASHES
    """Lost workers or nodes a shot may live through before it fails."""
    blocklist_after: int = defaults.BLOCKLIST_AFTER
    """Consecutive failures on one node before the node leaves the rotation for this job."""
    max_workers_per_model: int | None = None
    poll_seconds: float = 0.05
    progress_seconds: float = 1.0
    job_check_seconds: float = 0.5
    heartbeat_seconds: float = defaults.HEARTBEAT_SECONDS
    cancel_grace_seconds: float = 15.0
    retry_base_seconds: float = defaults.RETRY_BASE_SECONDS
    """The first retry of a failed shot waits about this long; each further one twice as long (jittered)."""
    retry_cap_seconds: float = defaults.RETRY_CAP_SECONDS
    idle_release_seconds: float = defaults.IDLE_RELEASE_SECONDS
    """A worker with nothing to render for this long is released, so another model's workers can start."""
    stuck_scale: float = 1.0
    """Multiplies every manifest's stuck timeout (tests shorten it; a slow cluster may lengthen it)."""
    placement: bool = True
    """Place shots by the learned costs (``farm.engine.placement``): each on the worker that would finish it
    first, waiting for a faster busy one when that is sooner. Off: the least loaded worker takes it."""
    yield_to_other_drivers: bool = True
    """Pause at shot boundaries while a higher-priority job is driven by another process (``farm render``
    beside a manager); the manager ranks its own jobs itself."""

    @property
    def stale_after_seconds(self) -> float:
        """How old a driver's heartbeat may be before its job counts as abandoned."""
        return defaults.STALE_AFTER_HEARTBEATS * self.heartbeat_seconds


@dataclass(frozen=True)
class ShotBudget:
    """What a shot has spent so far in this drive."""

    errors: int = 0
    crashes: int = 0
    low_memory: bool = False
    """The next attempt renders with the manifest's low-memory settings (after one ran out of memory)."""


@dataclass(frozen=True)
class Decision:
    shot_state: ShotState
    """Where the shot goes next: queued (another attempt), failed, or cancelled."""
    attempt_state: AttemptState
    note: str
    """Why, for the attempt's error message and the person watching."""
    budget: ShotBudget
    """The shot's budget after this failure."""


def decide(
    failure: Failure,
    budget: ShotBudget,
    options: EngineOptions,
    *,
    shot_id: str,
    stopping: bool = False,
    job_cancelled: bool = False,
) -> Decision:
    """The shot's next state and the attempt's final state after ``failure``.

    ``stopping``: the driver is stopping its renders (a cancel, or Ctrl-C); the attempt ends cancelled and
    the shot is cancelled if its job was (``job_cancelled``), else queued for the next drive.
    """
    if failure.kind is FailureKind.CANCELLED or stopping:
        state = ShotState.CANCELLED if job_cancelled else ShotState.QUEUED
        return Decision(state, AttemptState.CANCELLED, "stopped by the driver", budget)
    if failure.kind is FailureKind.STORAGE:
        note = "storage full; not counted against the shot, it runs again once there is room"
        return Decision(ShotState.QUEUED, AttemptState.FAILED, note, budget)
    if failure.kind is FailureKind.CRASH and not failure.reached_model:
        note = f"worker lost before shot {shot_id} started; not counted, it runs again elsewhere"
        return Decision(ShotState.QUEUED, AttemptState.CRASHED, note, budget)
    if failure.kind is FailureKind.CRASH:
        spent = replace(budget, crashes=budget.crashes + 1)
        if spent.crashes > options.max_crashes:
            return Decision(
                ShotState.FAILED, AttemptState.CRASHED, f"shot {shot_id} lost {spent.crashes} workers; giving up", spent
            )
        return Decision(
            ShotState.QUEUED, AttemptState.CRASHED, f"worker lost; shot {shot_id} will run again elsewhere", spent
        )
    if failure.kind is FailureKind.OUT_OF_MEMORY and not budget.low_memory:
        note = "out of memory; retrying with the low-memory settings"
        return Decision(ShotState.QUEUED, AttemptState.FAILED, note, replace(budget, low_memory=True))
    if failure.kind is FailureKind.REJECTED:
        return Decision(
            ShotState.FAILED, AttemptState.FAILED, f"shot {shot_id} cannot render with these inputs", budget
        )
    spent = replace(budget, errors=budget.errors + 1)
    failures = f"shot {shot_id} failed {_times(spent.errors)}"
    left = options.max_attempts - spent.errors
    if left <= 0:
        return Decision(ShotState.FAILED, AttemptState.FAILED, f"{failures}; no attempts left", spent)
    more = "1 more failure" if left == 1 else f"{left} more failures"
    return Decision(ShotState.QUEUED, AttemptState.FAILED, f"{failures}; {more} will fail it", spent)


def retry_delay(failures: int, options: EngineOptions, rng: random.Random | None = None) -> float:
    """Seconds a shot waits before its next attempt after ``failures`` failed ones: exponential from
    ``retry_base_seconds`` up to ``retry_cap_seconds``, with full-range jitter (0.5-1.5x) so the shots of a
    node that died together do not all come back in the same instant."""
    if failures <= 0 or options.retry_base_seconds <= 0:
        return 0.0
    delay = min(options.retry_cap_seconds, options.retry_base_seconds * 2 ** (failures - 1))
    return delay * (rng or random).uniform(0.5, 1.5)


def counts_against_node(failure: Failure) -> bool:
    """Whether ``failure`` may be the node's fault: a cancel is nobody's, inputs that can never render are
    the shot's and a full disk is the storage's, so none moves a node towards the blocklist; nor does the
    crash of a shot that never started (the shot that was rendering counted the node's failure)."""
    if failure.kind is FailureKind.CRASH:
        return failure.reached_model
    return failure.kind not in (FailureKind.CANCELLED, FailureKind.REJECTED, FailureKind.STORAGE)


def _times(count: int) -> str:
    return "1 time" if count == 1 else f"{count} times"


@dataclass
class NodeHealth:
    """Consecutive failures per node; a node that fails ``blocklist_after`` shots in a row is blocklisted.

    Keyed on Ray's node id (never a display label), so an actor that restarts onto a blocklisted node is
    still recognised as being on it.
    """

    blocklist_after: int
    failures: dict[str, int] = field(default_factory=dict)
    blocklisted: set[str] = field(default_factory=set)

    def succeeded(self, node_id: str) -> None:
        self.failures[node_id] = 0

    def failed(self, node_id: str) -> bool:
        """Count a failure on ``node_id``; True when this failure blocklists the node."""
        self.failures[node_id] = self.failures.get(node_id, 0) + 1
        if node_id in self.blocklisted or self.failures[node_id] < self.blocklist_after:
            return False
        self.blocklisted.add(node_id)
        return True
