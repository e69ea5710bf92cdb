"""Which ready shot runs next on the farm: the manager's ranking, as pure data and functions.

The order, most important first (DESIGN.md, issue 14):

1. preview tier before final: a preview of the whole edit is worth more than one final shot;
2. job priority;
3. fair share between shows: the show that has used the least GPU time for its share goes first, so a
   big show cannot starve a small one;
4. submission order (the older job first);
5. inside a job, the critical path first (the shot with the longest chain of ``continues`` behind it),
   then edit order.

A show at its GPU quota is skipped until one of its shots ends. Nothing here knows Ray or the database,
so the ranking is tested (and benchmarked) on its own.
"""

from __future__ import annotations

import heapq
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Candidate:
    """A shot that is ready to render, with what the ranking needs to know of it and its job."""

    job_id: int
    shot_pk: int
    show: str
    model: str
    preview: bool
    priority: int
    chain: int
    """Shots in the longest chain of ``continues`` that starts at this shot (itself included)."""
    edit_order: int
    gpus: float = 1.0
    cost: float = 1.0
    """Estimated GPU-seconds it will use (what the show is charged when it starts)."""

    def within_show(self) -> tuple[int, int, int, int, int]:
        """The order among one show's ready shots: tier, priority, job age, critical path, edit order."""
        return (0 if self.preview else 1, -self.priority, self.job_id, -self.chain, self.edit_order)


def critical_paths(continues: Mapping[str, str | None]) -> dict[str, int]:
    """For each shot id, the length of the longest ``continues`` chain that starts at it.

    ``continues`` maps a shot to the shot it continues (its predecessor); the chain behind a shot is
    itself plus the longest chain behind any shot that continues it.
    """
    followers: dict[str, list[str]] = {shot: [] for shot in continues}
    for shot, previous in continues.items():
        if previous is not None and previous in followers:
            followers[previous].append(shot)
    lengths: dict[str, int] = {}
    for start in continues:
        stack = [(start, False)]
        while stack:  # iterative post-order: chains may be thousands of shots long
            shot, expanded = stack.pop()
            if shot in lengths:
                continue
            if expanded:
                lengths[shot] = 1 + max((lengths[f] for f in followers[shot]), default=0)
                continue
            stack.append((shot, True))
            stack.extend((f, False) for f in followers[shot] if f not in lengths)
    return lengths


@dataclass
class FairShare:
    """GPU-seconds each show has used against its weighted share.

    A shot is charged its estimated cost when it starts (so the next pick already sees it) and the
    estimate is replaced by what it really used when it ends.
    """

    shares: dict[str, float] = field(default_factory=dict)
    used: dict[str, float] = field(default_factory=dict)

    def share(self, show: str) -> float:
        return self.shares.get(show, 1.0)

    def charge(self, show: str, gpu_seconds: float) -> None:
        self.used[show] = self.used.get(show, 0.0) + gpu_seconds

    def standing(self, show: str) -> float:
        """Used GPU time per unit of share: the lower, the more the show is owed."""
        return self.used.get(show, 0.0) / self.share(show)

    def fractions(self) -> dict[str, float]:
        total = sum(self.used.values()) or 1.0
        return {show: used / total for show, used in self.used.items()}


@dataclass
class DispatchQueue:
    """The ready shots of every job, one heap per (show, model), picked in the ranking's order.

    ``pop`` looks only at the head of each heap, so a pick costs O(shows x models), not O(shots).
    """

    _heaps: dict[tuple[str, str], list[tuple[tuple[int, ...], int, Candidate]]] = field(default_factory=dict)
    _count: int = 0

    def __len__(self) -> int:
        return sum(len(heap) for heap in self._heaps.values())

    def push(self, candidate: Candidate) -> None:
        self._count += 1
        heap = self._heaps.setdefault((candidate.show, candidate.model), [])
        heapq.heappush(heap, (candidate.within_show(), self._count, candidate))

    def extend(self, candidates: Iterable[Candidate]) -> None:
        for candidate in candidates:
            self.push(candidate)

    def pop(
        self,
        fair: FairShare,
        *,
        model_free: Callable[[str], bool],
        show_free: Callable[[str, float], bool] = lambda show, gpus: True,
    ) -> Candidate | None:
        """The best ready shot whose model has a free worker and whose show is under its quota."""
        best: tuple[tuple[float, ...], tuple[str, str]] | None = None
        for key, heap in self._heaps.items():
            if not heap:
                continue
            head = heap[0][2]
            if not model_free(head.model) or not show_free(head.show, head.gpus):
                continue
            tier, priority, job_id, chain, order = head.within_show()
            rank = (tier, priority, fair.standing(head.show), job_id, chain, order)
            if best is None or rank < best[0]:
                best = (rank, key)
        if best is None:
            return None
        return heapq.heappop(self._heaps[best[1]])[2]

    def heads(self) -> list[Candidate]:
        return [heap[0][2] for heap in self._heaps.values() if heap]

    def drain(self, model: str) -> list[Candidate]:
        """Take every ready shot of ``model`` out (its workers are gone), best first."""
        taken: list[Candidate] = []
        for key in [key for key in self._heaps if key[1] == model]:
            taken += [entry[2] for entry in sorted(self._heaps.pop(key))]
        return taken
