"""What a plan will cost before it is submitted: which shots the artifact store already has, and the
render time of the rest from the farm's learned costs.

The rates are measured. First the cost model (``farm.db.costs``): per model x GPU type x size, fitted from
the database's attempts (seconds per shot and per frame, falling back from the exact size to the model's
other sizes scaled by pixels), estimated on the farm's GPUs as they have been used, with each GPU type's
own rate and the model's load time beside it. Attempts recorded before the cost model give a model's GPU
time of rendered shots over their frames (``farm.db.stats``). A model with no rendered shot yet falls back
to its manifest's ``stuck.seconds_per_frame``, the most a frame may take before a render counts as stuck:
an upper bound, and the estimate says so. A read never writes: with no database yet, nothing is cached
and every rate is the manifest's.

A show with a GPU-hour budget gets its outlook beside the plan, from the same learned costs: what it has
spent, what its queued and running shots will still spend, what is left, and whether this plan fits.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from farm.catalog import ModelCatalog
from farm.db.errors import DatabaseMissing
from farm.plan import Plan, ShotTask

if TYPE_CHECKING:
    from farm.db.costs import CostModel
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
    measured_attempts: int = 0
    """Attempts the cost model fitted the rate from (0: the rate is the older per-model average, or the manifest's)."""
    level: str = ""
    """The cost model's key that answered (``model x size``: this size measured; ``model``: scaled by pixels)."""
    by_gpu: dict[str, float] = field(default_factory=dict)
    """Seconds per frame of these shots on each GPU type the model has rendered on."""
    load_seconds: float | None = None
    """The model's mean load time per worker, where workers reported it."""

    @property
    def at_these_steps(self) -> bool:
        """The rate was learned from attempts at the shots' own step count (``farm.db.costs.STEPS``)."""
        return self.level.endswith(" x steps")


@dataclass(frozen=True)
class BudgetOutlook:
    """A show's GPU-hour budget against what it has spent, what it is committed to, and this plan."""

    show: str
    budget_hours: float
    used_hours: float
    """GPU hours its jobs' shots have spent."""
    committed_hours: float
    """What its queued and running shots will still spend, at the learned costs."""
    plan_hours: float

    @property
    def left_hours(self) -> float:
        """What is left once the shots already queued have rendered (negative: they overrun it already)."""
        return self.budget_hours - self.used_hours - self.committed_hours

    @property
    def after_plan_hours(self) -> float:
        return self.left_hours - self.plan_hours

    @property
    def exceeds(self) -> bool:
        return self.after_plan_hours < 0

    def describe(self) -> str:
        if not self.plan_hours:
            return self._describe_queued()
        head = (
            f"show {self.show}: budget {self.budget_hours:g} GPU-h, {self.used_hours:.3f} used, "
            f"{self.committed_hours:.3f} queued, {max(self.left_hours, 0.0):.3f} left"
        )
        if self.exceeds:
            return (
                f"{head}; this plan ({self.plan_hours:.3f}) would exceed it by {-self.after_plan_hours:.3f} GPU-h "
                f"and its jobs would be held once it is spent; raise it with "
                f"farm show {self.show} --gpu-hour-budget HOURS"
            )
        return f"{head}; this plan ({self.plan_hours:.3f}) leaves {self.after_plan_hours:.3f}"

    def _describe_queued(self) -> str:
        """After a submit: the job is among the queued shots already."""
        head = (
            f"show {self.show}: budget {self.budget_hours:g} GPU-h, {self.used_hours:.3f} used, "
            f"{self.committed_hours:.3f} queued"
        )
        if self.exceeds:
            return (
                f"{head}: its queued shots would exceed the budget by {-self.left_hours:.3f} GPU-h, and its jobs "
                f"will be held once it is spent; raise it with farm show {self.show} --gpu-hour-budget HOURS"
            )
        return f"{head}, {self.left_hours:.3f} left"

    def to_json(self) -> dict[str, object]:
        return {
            "show": self.show, "budget_hours": self.budget_hours, "used_hours": round(self.used_hours, 4),
            "committed_hours": round(self.committed_hours, 4), "left_hours": round(self.left_hours, 4),
            "plan_hours": round(self.plan_hours, 4), "after_plan_hours": round(self.after_plan_hours, 4),
            "exceeds": self.exceeds,
        }  # fmt: skip


@dataclass(frozen=True)
class PlanCost:
    cached: frozenset[str]
    """Shot ids whose video is already in the artifact store (they will not render)."""
    rates: dict[str, ModelRate]
    to_render_frames: int
    gpu_hours: float
    """Estimated render time of the shots that are not cached, in device-hours (GPU, or CPU for CPU models)."""
    recipes: dict[str, str] = field(default_factory=dict)
    """Per model with a ``distilled:`` recipe: whether it is the default and why (``ModelManifest.recipe_note``)."""
    budget: BudgetOutlook | None = None
    """The plan's show against its GPU-hour budget; None when the show has none (or there is no database)."""

    def to_json(self) -> dict[str, object]:
        return {
            "budget": self.budget.to_json() if self.budget else None,
            "recipes": self.recipes,
            "cached_shots": sorted(self.cached),
            "frames_to_render": self.to_render_frames,
            "gpu_hours": round(self.gpu_hours, 4),
            "rates": {
                name: {"seconds_per_frame": rate.seconds_per_frame, "source": rate.source,
                       "measured_frames": rate.measured_frames, "measured_attempts": rate.measured_attempts,
                       "level": rate.level, "by_gpu": rate.by_gpu, "load_seconds": rate.load_seconds}
                for name, rate in self.rates.items()
            },
        }  # fmt: skip


def plan_cost(plan: Plan, db: Database | None, catalog: ModelCatalog) -> PlanCost:
    """The cost of ``plan`` against the farm's cache and history (``db`` None: no database yet)."""
    models = sorted({task.model for task in plan.tasks})
    measured: dict[str, tuple[float, int]] = {}
    cached: set[str] = set()
    costs: CostModel | None = None
    if db is not None:
        try:
            measured, cached, costs = _history(plan, db, models)
        except DatabaseMissing:
            measured, cached, costs = {}, set(), None
    pending = [task for task in plan.tasks if task.shot_id not in cached]
    rates: dict[str, ModelRate] = {}
    seconds = 0.0
    for model in models:
        gpus = max(catalog.get(model).resources.gpus, 1.0)
        todo = [task for task in pending if task.model == model]
        learned = (
            _learned_rate(costs, model, todo or [task for task in plan.tasks if task.model == model], gpus)
            if costs is not None
            else None
        )
        if learned is not None and costs is not None:
            rates[model] = learned
            seconds += sum(_gpu_seconds(costs, task, None, gpus) for task in todo)
            continue
        if model in measured:
            rate, measured_frames = measured[model]
            rates[model] = ModelRate(model, rate, MEASURED, measured_frames)
        else:
            rates[model] = ModelRate(model, catalog.get(model).stuck.seconds_per_frame, MANIFEST)
        seconds += sum(task.frames for task in todo) * rates[model].seconds_per_frame
    recipes = {
        model: f"{manifest.recipe}: {manifest.recipe_note}"
        for model in models
        if (manifest := catalog.get(model)).distilled is not None
    }
    budget = show_budget(plan.project, db, catalog, seconds / 3600) if db is not None and costs is not None else None
    return PlanCost(frozenset(cached), rates, sum(task.frames for task in pending), seconds / 3600, recipes, budget)


def show_budget(show: str, db: Database, catalog: ModelCatalog, plan_hours: float = 0.0) -> BudgetOutlook | None:
    """The show's budget outlook (None without a budget), its queued shots costed by the learned model (a model
    with no attempt yet at its manifest's stuck-timeout rate, as a plan's own shots are)."""
    from farm.db.costs import learned_costs
    from farm.db.errors import UnknownShow
    from farm.db.shows import pending_shots, read_show

    try:
        info = read_show(db, show)
    except UnknownShow:
        return None
    if info.gpu_hour_budget is None:
        return None
    pending = pending_shots(db, show)
    costs = learned_costs(
        db, models={shot.model for shot in pending}, fallback=lambda name: _manifest_rate(catalog, name)
    )
    committed = 0.0
    for shot in pending:
        gpus = max(catalog.get(shot.model).resources.gpus, 1.0) if shot.model in catalog else 1.0
        estimate = costs.estimate(shot.model, None, shot.width, shot.height, shot.frames, shot.steps)
        committed += estimate.seconds * shot.left * gpus
    return BudgetOutlook(show, info.gpu_hour_budget, info.gpu_hours_used, committed / 3600, plan_hours)


def _manifest_rate(catalog: ModelCatalog, model: str) -> float:
    return catalog.get(model).stuck.seconds_per_frame if model in catalog else 0.0


def _history(plan: Plan, db: Database, models: list[str]) -> tuple[dict[str, tuple[float, int]], set[str], CostModel]:
    """Each model's measured (seconds per frame, frames), the shots of ``plan`` already in the store, and
    the costs learned from the attempts. The database's modules are imported here, so a plan with no
    database never loads SQLAlchemy."""
    from farm.db.costs import learned_costs
    from farm.db.stats import farm_stats
    from farm.engine.artifacts import intact_artifacts

    measured = {
        tally.model: (tally.rendered_gpu_seconds / tally.frames_rendered, tally.frames_rendered)
        for tally in farm_stats(db).models
        if tally.frames_rendered > 0
    }
    hits = intact_artifacts(db, (task.cache_key for task in plan.tasks))
    cached = {task.shot_id for task in plan.tasks if task.cache_key in hits}
    return measured, cached, learned_costs(db, models=models)


def _gpu_seconds(costs: CostModel, task: ShotTask, gpu_type: str | None, gpus: float) -> float:
    return costs.estimate(task.model, gpu_type, task.width, task.height, task.frames, task.steps).seconds * gpus


def _learned_rate(costs: CostModel, model: str, tasks: list[ShotTask], gpus: float) -> ModelRate | None:
    """The model's GPU-seconds per frame over ``tasks`` from the cost model; None when it has no attempt."""
    from farm.db.costs import FALLBACK

    if not tasks:
        return None
    first = tasks[0]
    probe = costs.estimate(model, None, first.width, first.height, first.frames, first.steps)
    if probe.source == FALLBACK:
        return None
    frames = max(1, sum(task.frames for task in tasks))
    overall = sum(_gpu_seconds(costs, task, None, gpus) for task in tasks) / frames
    by_gpu = {
        gpu: sum(_gpu_seconds(costs, task, gpu, gpus) for task in tasks) / frames for gpu in costs.gpu_types(model)
    }
    return ModelRate(
        model, overall, MEASURED, measured_attempts=probe.samples, level=probe.source, by_gpu=by_gpu,
        load_seconds=costs.load_seconds(model),
    )  # fmt: skip
