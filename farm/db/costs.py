"""The learned cost model: how long a shot of a model takes on a GPU type at a size, from the attempts.

Every succeeded attempt records its model, the GPU type its worker reported, its size and frames and the
worker's busy seconds; a worker's first attempt also its model load time (``farm.db.shots``), and is left
out of the fit: its time includes the worker's warm-up (measured on the fake GPUs: 0.3 s on a 0.13 s
shot). A shot's time is fitted as

    seconds = per_shot + per_megapixel_frame x frames x megapixels

by least squares, from sums that SQL keeps (one grouped query, over a covering index) and that the scheduler
adds each finished attempt to as it ends. The fit is kept for each key of a fallback chain, the most specific
with any samples answering:

    model x GPU type x size  ->  model x GPU type  ->  model x size  ->  model  ->  the caller's fallback

so a new GPU type is estimated from the model's other GPUs, and a new size from the model's other sizes
scaled by pixels. A shot whose step count is known tries the same chain at its steps first (``... x steps``):
a 4-step distilled shot costs a fraction of a 40-step one of the same model, GPU and size, and an escalated
retake at 60 steps more; only where its steps were never measured does it fall back to all steps pooled.
The estimates feed the scheduler's placement (which worker, and whether to wait for a faster one),
``farm plan``'s GPU-hours, the shows' budgets (``farm.jobs.estimate``) and the jobs' ETA (``farm.db.queries``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Connection, case, func, select

from farm.db.retry import transaction
from farm.db.session import Database
from farm.db.states import AttemptState
from farm.db.tables import Render

Size = tuple[int, int]
Key = tuple[str, str | None, Size | None, int | None]
"""(model, GPU type, size, steps); None: pooled over that dimension."""

MIN_FIT_SAMPLES = 5
MIN_FIT_SPREAD = 0.2
"""Below this many attempts, or when their lengths vary less than this (standard deviation over mean), a key's
rate is the ratio of its totals, no intercept: an intercept fitted to a few similar shots is mostly noise, and
multiplied by the shots left it would swamp an ETA."""


@dataclass
class CostSums:
    """Least-squares sums of (x = frames x megapixels, y = seconds) over attempts, and their load times."""

    n: int = 0
    x: float = 0.0
    y: float = 0.0
    xx: float = 0.0
    xy: float = 0.0
    loads: int = 0
    load_seconds: float = 0.0

    def add(self, x: float, y: float, load_seconds: float | None = None) -> None:
        """One attempt; one that carries its worker's load time was the worker's first, whose time includes
        the warm-up (the encoder's first start, compilation, autotuning): it counts toward the load, not the fit."""
        if load_seconds is not None:
            self.loads += 1
            self.load_seconds += load_seconds
            return
        self.n += 1
        self.x += x
        self.y += y
        self.xx += x * x
        self.xy += x * y

    def merge(self, other: CostSums) -> None:
        self.n += other.n
        self.x += other.x
        self.y += other.y
        self.xx += other.xx
        self.xy += other.xy
        self.loads += other.loads
        self.load_seconds += other.load_seconds

    def fit(self) -> tuple[float, float]:
        """(seconds per shot, seconds per megapixel-frame). An intercept only where the lengths vary enough
        to tell it from the slope and it comes out sensible; otherwise the ratio of the totals."""
        if self.n >= MIN_FIT_SAMPLES and self.x > 0:
            spread = self.n * self.xx - self.x * self.x  # n^2 x variance
            if spread > (MIN_FIT_SPREAD * self.x) ** 2:  # std / mean > MIN_FIT_SPREAD
                slope = (self.n * self.xy - self.x * self.y) / spread
                intercept = (self.y - slope * self.x) / self.n
                if slope > 0 and intercept >= 0:
                    return intercept, slope
        return 0.0, self.y / self.x if self.x > 0 else 0.0


@dataclass(frozen=True)
class ShotCost:
    """A shot's estimated worker time, and where the estimate came from."""

    seconds: float
    seconds_per_frame: float
    """At the shot's size, the per-shot part left out."""
    per_shot: float
    source: str
    """The key that answered: ``model x gpu x size``, ``model x gpu``, ``model x size``, ``model`` (each with
    `` x steps`` when the shot's step count was measured) or ``fallback``."""
    samples: int


SOURCES = ("model x gpu x size", "model x gpu", "model x size", "model")
STEPS = " x steps"
FALLBACK = "fallback"


def megapixels(width: int, height: int) -> float:
    return width * height / 1e6


@dataclass
class CostModel:
    """Fitted costs per key of the fallback chain; ``fallback`` gives a model's seconds per frame when no
    attempt of it was recorded (the manifest's figure)."""

    fallback: Callable[[str], float] = lambda model: 1.0
    sums: dict[Key, CostSums] = field(default_factory=dict)

    def observe(
        self, model: str, gpu_type: str | None, width: int, height: int, frames: int, seconds: float,
        load_seconds: float | None = None, steps: int | None = None,
    ) -> None:  # fmt: skip
        """Add one finished attempt (the scheduler calls this as each shot ends)."""
        sums = CostSums()
        sums.add(frames * megapixels(width, height), seconds, load_seconds)
        self.add(model, gpu_type, (width, height), sums, steps)

    def add(self, model: str, gpu_type: str | None, size: Size, sums: CostSums, steps: int | None = None) -> None:
        """Add attempts' sums for one model x GPU type x size (x steps) to every key of the chain they belong to."""
        for key, _ in _keyed_chain(model, gpu_type, size, steps):
            self.sums.setdefault(key, CostSums()).merge(sums)

    def estimate(
        self, model: str, gpu_type: str | None, width: int, height: int, frames: int, steps: int | None = None
    ) -> ShotCost:
        """The shot's worker seconds on ``gpu_type`` (None: on the farm's GPUs as they have been used), at its
        ``steps`` where they were measured (None: the model's attempts at any steps)."""
        pixels = megapixels(width, height)
        for key, source in _keyed_chain(model, gpu_type, (width, height), steps):
            sums = self.sums.get(key)
            if sums is not None and sums.n > 0 and sums.x > 0:
                per_shot, per_x = sums.fit()
                return ShotCost(per_shot + per_x * pixels * frames, per_x * pixels, per_shot, source, sums.n)
        rate = self.fallback(model)
        return ShotCost(rate * frames, rate, 0.0, FALLBACK, 0)

    def load_seconds(self, model: str, gpu_type: str | None = None) -> float | None:
        """Mean model load time on ``gpu_type`` (else on any GPU); None when no worker reported one."""
        for key in ((model, gpu_type, None, None), (model, None, None, None)):
            sums = self.sums.get(key)
            if sums is not None and sums.loads:
                return sums.load_seconds / sums.loads
        return None

    def gpu_types(self, model: str) -> list[str]:
        """The GPU types the model has recorded attempts on."""
        pooled = (key for key in self.sums if key[0] == model and key[2] is None and key[3] is None)
        return sorted({key[1] for key in pooled if key[1] is not None})


def _keyed_chain(model: str, gpu_type: str | None, size: Size, steps: int | None = None) -> list[tuple[Key, str]]:
    """The chain's keys, most specific first, with the source each names: at ``steps`` first, then pooled."""
    pooled = [((model, gpu_type, size, None), SOURCES[0]), ((model, gpu_type, None, None), SOURCES[1])]
    pooled = [*(pooled if gpu_type is not None else []), ((model, None, size, None), SOURCES[2])]
    pooled.append(((model, None, None, None), SOURCES[3]))
    if steps is None:
        return pooled
    return [((*key[:3], steps), source + STEPS) for key, source in pooled] + pooled


@transaction
def learned_costs(
    db: Database, *, models: Iterable[str] | None = None, fallback: Callable[[str], float] | None = None
) -> CostModel:
    """The cost model from every succeeded attempt of ``models`` (None: of every model), in one read."""
    with db.read() as connection:
        return read_costs(connection, models, fallback)


def read_costs(
    connection: Connection, models: Iterable[str] | None = None, fallback: Callable[[str], float] | None = None
) -> CostModel:
    """``learned_costs`` inside a read the caller holds (the status queries)."""
    costs = CostModel(fallback) if fallback is not None else CostModel()
    frames = Render.c.frames
    seconds = Render.c.model_seconds
    steady = Render.c.load_seconds.is_(None)  # a worker's first attempt carries its load and warm-up: not fitted

    def fitted(value: Any) -> Any:
        return func.coalesce(func.sum(case((steady, value), else_=0)), 0)

    where = [
        Render.c.state == AttemptState.SUCCEEDED,
        Render.c.model.is_not(None),
        seconds.is_not(None),
        frames > 0,
        Render.c.width > 0,
        Render.c.height > 0,
    ]
    if models is not None:
        where.append(Render.c.model.in_(sorted(set(models))))
    rows = connection.execute(
        select(
            Render.c.model,
            Render.c.gpu_type,
            Render.c.width,
            Render.c.height,
            Render.c.steps,
            fitted(1),
            fitted(frames),
            fitted(seconds),
            fitted(frames * frames),
            fitted(frames * seconds),
            func.count(Render.c.load_seconds),
            func.coalesce(func.sum(Render.c.load_seconds), 0.0),
        )
        .where(*where)
        .group_by(Render.c.model, Render.c.gpu_type, Render.c.width, Render.c.height, Render.c.steps)
    ).all()
    for model, gpu_type, width, height, steps, n, x, y, xx, xy, loads, load in rows:
        pixels = megapixels(width, height)  # one size per group: x = frames x megapixels scales exactly
        sums = CostSums(
            n=int(n), x=float(x) * pixels, y=float(y), xx=float(xx) * pixels * pixels, xy=float(xy) * pixels,
            loads=int(loads), load_seconds=float(load),
        )  # fmt: skip
        costs.add(model, gpu_type, (width, height), sums, steps)
    return costs
