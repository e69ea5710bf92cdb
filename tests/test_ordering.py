"""The manager's ranking on its own: which ready shot runs next, fair share, critical paths, back-off."""

from __future__ import annotations

import random

from farm.engine.ordering import Candidate, DispatchQueue, FairShare, critical_paths
from farm.engine.policy import EngineOptions, retry_delay


def shot(job: int, pk: int, *, show: str = "A", model: str = "m", preview: bool = False, priority: int = 0,
         chain: int = 1, order: int = 0, cost: float = 1.0) -> Candidate:  # fmt: skip
    return Candidate(job, pk, show, model, preview, priority, chain, order, gpus=1.0, cost=cost)


def picks(queue: DispatchQueue, fair: FairShare, count: int, **limits: object) -> list[int]:
    chosen = []
    for _ in range(count):
        candidate = queue.pop(fair, model_free=lambda model: True, **limits)
        if candidate is None:
            break
        fair.charge(candidate.show, candidate.cost)
        chosen.append(candidate.shot_pk)
    return chosen


def test_preview_goes_before_final_then_priority_then_the_older_job() -> None:
    queue = DispatchQueue()
    queue.extend(
        [
            shot(1, 10),
            shot(2, 20, priority=5),
            shot(3, 30, preview=True),
            shot(4, 40, preview=True, priority=1),
            shot(0, 50),
        ]
    )
    assert picks(queue, FairShare(), 5) == [40, 30, 20, 50, 10]


def test_inside_a_job_the_longest_chain_goes_first_then_edit_order() -> None:
    queue = DispatchQueue()
    queue.extend([shot(1, 1, order=0, chain=1), shot(1, 2, order=1, chain=4), shot(1, 3, order=2, chain=4)])
    assert picks(queue, FairShare(), 3) == [2, 3, 1]


def test_critical_paths_count_the_chain_behind_each_shot() -> None:
    continues = {"a": None, "b": "a", "c": "b", "d": None, "e": "a", "f": "e", "g": "f", "h": "g"}
    assert critical_paths(continues) == {"a": 5, "b": 2, "c": 1, "d": 1, "e": 4, "f": 3, "g": 2, "h": 1}


def test_critical_paths_of_a_chain_of_ten_thousand_shots_do_not_recurse() -> None:
    continues = {f"s{i}": (f"s{i - 1}" if i else None) for i in range(10_000)}
    assert critical_paths(continues)["s0"] == 10_000


def test_fair_share_gives_each_show_its_weighted_share_of_gpu_time() -> None:
    queue = DispatchQueue()
    for show in ("A", "B", "C"):
        queue.extend(shot(ord(show), index, show=show, order=index) for index in range(1_000))
    fair = FairShare(shares={"C": 2.0})
    picked = picks(queue, fair, 400)
    assert len(picked) == 400
    fractions = fair.fractions()
    assert abs(fractions["A"] - 0.25) < 0.01 and abs(fractions["B"] - 0.25) < 0.01 and abs(fractions["C"] - 0.5) < 0.01


def test_a_big_show_does_not_starve_a_small_one_that_arrives_later() -> None:
    queue = DispatchQueue()
    queue.extend(shot(1, index, show="Big", order=index) for index in range(100))
    fair = FairShare()
    picks(queue, fair, 50)
    queue.extend(shot(2, 1_000 + index, show="Small", order=index) for index in range(5))
    assert picks(queue, fair, 5) == [1_000, 1_001, 1_002, 1_003, 1_004]


def test_a_show_at_its_gpu_quota_waits_and_a_model_without_a_free_worker_is_skipped() -> None:
    queue = DispatchQueue()
    queue.extend([shot(1, 1, show="Quota"), shot(2, 2, show="Other", model="busy"), shot(3, 3, show="Other")])
    fair = FairShare(used={"Other": 100.0})
    candidate = queue.pop(fair, model_free=lambda model: model != "busy", show_free=lambda show, gpus: show != "Quota")
    assert candidate is not None and candidate.shot_pk == 3


def test_retries_back_off_exponentially_with_jitter_up_to_the_cap() -> None:
    options = EngineOptions(retry_base_seconds=1.0, retry_cap_seconds=30.0)
    rng = random.Random(7)
    delays = {failures: [retry_delay(failures, options, rng) for _ in range(200)] for failures in (1, 2, 3, 10)}
    assert retry_delay(0, options, rng) == 0.0
    for failures, seen in delays.items():
        base = min(30.0, 2 ** (failures - 1))
        assert all(0.5 * base <= delay <= 1.5 * base for delay in seen), failures
        assert max(seen) - min(seen) > 0.5 * base, "no jitter"
    assert max(delays[10]) <= 45.0
