"""Which worker takes a shot, on GPUs of different speeds: the one that would finish it first.

The ranking (``farm.engine.ordering``) decides which ready shot goes next; this decides where, from the
learned costs (``farm.db.costs``): each worker of the shot's model is a lane with the predicted seconds of
work ahead of a new shot (what it renders now, less what it has done, and the shot prefetched behind it) and
the predicted seconds of this shot on it. The shot goes to the lane where it would finish first. When that
lane cannot take it now (its prefetch queue is full) the shot waits for it, and the time is reserved there,
so the next shot weighs the slow lane against a fast lane already promised work: a slow GPU is never handed
a shot that a faster one would finish sooner, and the long shots end up on the fast GPUs. It is earliest
finish time list scheduling: the indivisible last shots finish as early as the lanes allow.

Pure data and functions, no Ray and no database, so it is tested on its own.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

TIE_SECONDS = 0.05
TIE_FRACTION = 0.02
"""An open lane finishing within this much of the best full one takes the shot rather than waiting: an
estimate is not that precise, and a shot dispatched now cannot be delayed by a late result."""


@dataclass(frozen=True)
class Lane:
    """One worker as placement sees it."""

    name: str
    ahead: float
    """Predicted seconds of work before a new shot could start there (renders in flight, reservations)."""
    takes: float
    """Predicted seconds of this shot there."""
    open: bool
    """It can take a shot now (ready, not draining, room in its prefetch queue)."""
    load: int = 0
    """Calls in flight there: of equal lanes, the less loaded one takes the shot."""

    @property
    def finish(self) -> float:
        return self.ahead + self.takes


def best_lane(lanes: Sequence[Lane]) -> Lane:
    """The lane that would finish the shot first, open or not (of equal ones, an open, less loaded one)."""
    return min(lanes, key=lambda lane: (lane.finish, not lane.open, lane.load))


def choose(lanes: Sequence[Lane]) -> Lane | None:
    """The lane to dispatch to now, or None when the shot should wait for a lane that is full now."""
    if not lanes:
        return None
    best = best_lane(lanes)
    if best.open:
        return best
    margin = max(TIE_SECONDS, TIE_FRACTION * best.finish)
    near = [lane for lane in lanes if lane.open and lane.finish <= best.finish + margin]
    return min(near, key=lambda lane: (lane.finish, lane.load)) if near else None


def remaining(predicted: float, turn_started: float | None, now: float) -> float:
    """Predicted seconds left of a render: all of it while it waits for its turn on the worker, less the time
    since its turn began once it holds the slot (never below zero: a late render is about to end)."""
    if turn_started is None:
        return predicted
    return max(0.0, predicted - (now - turn_started))
