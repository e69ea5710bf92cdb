"""The failure policy without Ray: what a failed attempt means for its shot, its node and the worker pool."""

from __future__ import annotations

import pytest
import ray.exceptions

from farm.db.states import AttemptState, ShotState
from farm.engine.faults import as_farm_error, classify_failure
from farm.engine.messages import WorkerIdentity
from farm.engine.policy import (
    EngineOptions,
    Failure,
    FailureKind,
    NodeHealth,
    ShotBudget,
    counts_against_node,
    decide,
)
from farm.engine.pool import PooledWorker, WorkerPool
from farm.errors import FarmError, OutOfMemoryError, RenderCancelled, RenderError, RetryableRenderError

OPTIONS = EngineOptions(max_attempts=3, max_crashes=2)


def failure(kind: FailureKind) -> Failure:
    return Failure(kind, "SomeError", "it broke")


def test_errors_count_down_and_fail_the_shot_when_the_attempts_are_spent() -> None:
    budget = ShotBudget()
    notes = []
    for _ in range(3):
        decision = decide(failure(FailureKind.ERROR), budget, OPTIONS, shot_id="sc01_020")
        budget = decision.budget
        notes.append((decision.shot_state, decision.attempt_state, decision.note))

    assert notes == [
        (ShotState.QUEUED, AttemptState.FAILED, "shot sc01_020 failed 1 time; 2 more failures will fail it"),
        (ShotState.QUEUED, AttemptState.FAILED, "shot sc01_020 failed 2 times; 1 more failure will fail it"),
        (ShotState.FAILED, AttemptState.FAILED, "shot sc01_020 failed 3 times; no attempts left"),
    ]


def test_a_lost_worker_is_crashed_not_failed_and_spends_no_attempt() -> None:
    first = decide(failure(FailureKind.CRASH), ShotBudget(errors=2), OPTIONS, shot_id="a")
    second = decide(failure(FailureKind.CRASH), first.budget, OPTIONS, shot_id="a")
    third = decide(failure(FailureKind.CRASH), second.budget, OPTIONS, shot_id="a")

    assert (first.shot_state, first.attempt_state, first.budget) == (
        ShotState.QUEUED,
        AttemptState.CRASHED,
        ShotBudget(errors=2, crashes=1),
    )
    assert "will run again elsewhere" in first.note
    assert second.shot_state is ShotState.QUEUED
    assert (third.shot_state, third.note) == (ShotState.FAILED, "shot a lost 3 workers; giving up")


def test_out_of_memory_retries_once_with_the_low_memory_settings_then_counts_as_an_error() -> None:
    first = decide(failure(FailureKind.OUT_OF_MEMORY), ShotBudget(), OPTIONS, shot_id="a")
    second = decide(failure(FailureKind.OUT_OF_MEMORY), first.budget, OPTIONS, shot_id="a")

    assert (first.shot_state, first.budget) == (ShotState.QUEUED, ShotBudget(low_memory=True))
    assert "low-memory" in first.note
    assert (second.shot_state, second.budget) == (ShotState.QUEUED, ShotBudget(errors=1, low_memory=True))


def test_rejected_inputs_fail_at_once() -> None:
    decision = decide(failure(FailureKind.REJECTED), ShotBudget(), OPTIONS, shot_id="a")

    assert (decision.shot_state, decision.budget) == (ShotState.FAILED, ShotBudget())


@pytest.mark.parametrize(("job_cancelled", "shot_state"), [(True, ShotState.CANCELLED), (False, ShotState.QUEUED)])
def test_a_stopping_driver_cancels_the_attempt_and_queues_the_shot_unless_its_job_was_cancelled(
    job_cancelled: bool, shot_state: ShotState
) -> None:
    decision = decide(failure(FailureKind.ERROR), ShotBudget(), OPTIONS, shot_id="a", stopping=True,
                      job_cancelled=job_cancelled)  # fmt: skip

    assert (decision.shot_state, decision.attempt_state, decision.budget) == (
        shot_state,
        AttemptState.CANCELLED,
        ShotBudget(),
    )


def test_a_node_is_blocklisted_after_consecutive_failures_and_a_success_resets_its_count() -> None:
    health = NodeHealth(blocklist_after=3)

    assert [health.failed("n1"), health.failed("n1")] == [False, False]
    health.succeeded("n1")
    assert [health.failed("n1"), health.failed("n1"), health.failed("n1")] == [False, False, True]
    assert health.failed("n1") is False  # blocklisted once, not again
    assert health.blocklisted == {"n1"}


def test_only_failures_that_may_be_the_nodes_fault_count_towards_its_blocklisting() -> None:
    counted = {kind for kind in FailureKind if counts_against_node(failure(kind))}

    assert counted == {FailureKind.CRASH, FailureKind.ERROR, FailureKind.OUT_OF_MEMORY}


def test_a_worker_that_restarts_onto_a_blocklisted_node_gets_no_more_shots() -> None:
    """The pool filtered by a display label ("ip/id[:8]") against full node ids, so a restarted actor that
    came back on a blocklisted node was handed shots again."""
    pool = WorkerPool("/store")
    restarted = PooledWorker("pattern-0", "pattern", actor=None)
    healthy = PooledWorker("pattern-1", "pattern", actor=None)
    pool.workers = [restarted, healthy]
    pool.blocklisted_nodes.add("bad-node-id-0123456789")

    restarted.identity = WorkerIdentity("pattern-0", "bad-node-id-0123456789", "10.0.0.7", "cuda")
    healthy.identity = WorkerIdentity("pattern-1", "good-node-id-987654321", "10.0.0.8", "cuda")

    assert pool.available("pattern") == [healthy]
    assert pool.usable("pattern") == [healthy]


def test_foreign_errors_are_classified_by_what_they_say_of_themselves() -> None:
    class StudioError(FarmError):
        retryable = True

    assert classify_failure(RenderCancelled("stop")).kind is FailureKind.CANCELLED
    assert classify_failure(OutOfMemoryError("CUDA out of memory")).kind is FailureKind.OUT_OF_MEMORY
    assert classify_failure(StudioError("license server blip")).kind is FailureKind.CRASH
    assert classify_failure(RetryableRenderError("lost")).kind is FailureKind.CRASH
    assert classify_failure(RenderError("no face")).kind is FailureKind.REJECTED
    assert classify_failure(ValueError("bug")).kind is FailureKind.ERROR
    assert classify_failure(ray.exceptions.ActorDiedError()).kind is FailureKind.CRASH
    assert classify_failure(ray.exceptions.ObjectLostError("0" * 56, "", "")).kind is FailureKind.CRASH


def test_a_device_out_of_memory_becomes_farms_error_with_its_cause() -> None:
    torch = pytest.importorskip("torch")
    raised = torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB\nmore detail")
    mapped = as_farm_error(raised, "shot sc01_010")

    assert isinstance(mapped, OutOfMemoryError) and mapped.__cause__ is raised
    assert str(mapped) == (
        "shot sc01_010: out of device memory (OutOfMemoryError: CUDA out of memory. Tried to allocate 2.00 GiB); "
        "retrying with the manifest's low_memory settings"
    )
    assert isinstance(as_farm_error(RuntimeError("HIP out of memory")), OutOfMemoryError)
    plain = RuntimeError("shape mismatch")
    assert as_farm_error(plain) is plain
