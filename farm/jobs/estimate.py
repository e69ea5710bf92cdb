"""What a plan will cost before it is submitted: which shots the artifact store already has, and the
render time of the rest from each model's measured seconds per frame.

The rate is measured: the GPU time of a model's rendered (not cached) shots over their frames, from the
database's attempts (``farm.db.stats``). A model with no rendered shot yet falls back to its manifest's
``stuck.seconds_per_frame``, the most a frame may take before a render counts as stuck: an upper
bound, and the estimate says so. A read never writes: with no database yet, nothing is cached and
every rate is the manifest's.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from farm.catalog import ModelCatalog
from farm.db.errors import DatabaseMissing
from farm.plan import Plan

if TYPE_CHECKING:
    from farm.db.session import Database

MEASURED = "measured"
MANIFEST = "manifest"


@dataclass(frozen=True)
class ModelRate:
    model: str
    seconds_per_frame: float
    source: str
    """``measured`` (from the database's rendered shots) or ``manifest`` (its stuck-timeout rate, an upper bound)."""
    measured_frames: int = 0


@dataclass(frozen=True)
class PlanCost:
    cached: frozenset[str]
    """Shot ids whose video is already in the artifact store (they will not render)."""
    rates: dict[str, ModelRate]
    to_render_frames: int
    gpu_hours: float
    """Estimated render time of the shots that are not cached, in device-hours (GPU, or CPU for CPU models)."""

    def to_json(self) -> dict[str, object]:
        return {
            "cached_shots": sorted(self.cached),
            "frames_to_render": self.to_render_frames,
            "gpu_hours": round(self.gpu_hours, 4),
            "rates": {
                name: {"seconds_per_frame": rate.seconds_per_frame, "source": rate.source,
                       "measured_frames": rate.measured_frames}
                for name, rate in self.rates.items()
            },
        }  # fmt: skip


def plan_cost(plan: Plan, db: Database | None, catalog: ModelCatalog) -> PlanCost:
    """The cost of ``plan`` against the farm's cache and history (``db`` None: no database yet)."""
    measured: dict[str, tuple[float, int]] = {}
    cached: set[str] = set()
    if db is not None:
        try:
            measured, cached = _history(plan, db)
        except DatabaseMissing:
            measured, cached = {}, set()
    rates: dict[str, ModelRate] = {}
    for model in sorted({task.model for task in plan.tasks}):
        if model in measured:
            rate, frames = measured[model]
            rates[model] = ModelRate(model, rate, MEASURED, frames)
        else:
            rates[model] = ModelRate(model, catalog.get(model).stuck.seconds_per_frame, MANIFEST)
    pending = [task for task in plan.tasks if task.shot_id not in cached]
    seconds = sum(task.frames * rates[task.model].seconds_per_frame for task in pending)
    return PlanCost(frozenset(cached), rates, sum(task.frames for task in pending), seconds / 3600)


def _history(plan: Plan, db: Database) -> tuple[dict[str, tuple[float, int]], set[str]]:
    """Each model's measured (seconds per frame, frames) and the shots of ``plan`` already in the store.
    The database's modules are imported here, so a plan with no database never loads SQLAlchemy."""
    from farm.db.stats import farm_stats
    from farm.engine.artifacts import intact_artifacts

    measured = {
        tally.model: (tally.rendered_gpu_seconds / tally.frames_rendered, tally.frames_rendered)
        for tally in farm_stats(db).models
        if tally.frames_rendered > 0
    }
    hits = intact_artifacts(db, (task.cache_key for task in plan.tasks))
    cached = {task.shot_id for task in plan.tasks if task.cache_key in hits}
    return measured, cached
