"""A job's ETA from the learned costs (``farm.db.costs``): its queued shots placed on the workers rendering it.

The workers are those rendering the job now (one of its shots is running there; with none running, the worker
of its latest attempt), each at its GPU type's learned cost for the size it renders: ``per_shot + frames x
seconds_per_frame``. Each is busy for what is left of its renders in flight (by their progress); the queued
shots then go, in edit order, each to the worker that would finish it first, as the scheduler's placement
does (``farm.engine.placement``). The ETA is when the last one ends, so the indivisible last shots and a slow
GPU left idle at the end are in it. A job whose workers' costs are all unknown has no costed ETA (the caller
falls back to its observed frames per second). The reads go through the shots' covering index and the cost
model's, never through a job's attempts.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from sqlalchemy import Connection, select

from farm.db.costs import FALLBACK, CostModel, read_costs
from farm.db.states import ShotState
from farm.db.tables import Render, Shot


@dataclass(frozen=True)
class Remaining:
    shots: int
    """Shots queued or running."""
    frames: float
    """Frames still to render (running shots by the part their attempt has not done)."""


@dataclass(frozen=True)
class _Lane:
    job_id: int
    worker: str
    gpu_type: str | None
    model: str
    width: int
    height: int
    steps: int | None
    frames: int
    progress: float
    running: bool


def costed_etas(connection: Connection, remaining: Mapping[int, Remaining]) -> dict[int, float]:
    """Seconds until each job's remaining shots are rendered, for the jobs whose workers' costs are known."""
    wanted = [job_id for job_id, left in remaining.items() if left.shots > 0]
    if not wanted:
        return {}
    lanes = _lanes(connection, wanted)
    if not lanes:
        return {}
    costs = read_costs(connection, {lane.model for lane in lanes})
    etas: dict[int, float] = {}
    for job_id in sorted({lane.job_id for lane in lanes}):
        queued = connection.execute(
            select(Shot.c.frames)
            .where(Shot.c.job_id == job_id, Shot.c.state == ShotState.QUEUED)
            .order_by(Shot.c.edit_order)
        ).scalars()
        eta = _eta(costs, [lane for lane in lanes if lane.job_id == job_id], list(queued))
        if eta is not None:
            etas[job_id] = eta
    return etas


def _eta(costs: CostModel, lanes: list[_Lane], queued: list[int]) -> float | None:
    """When the last shot ends: the renders in flight first, then ``queued`` (frames, in edit order), each on the
    worker that would finish it first."""
    free: dict[str, float] = {}
    rates: dict[str, tuple[float, float]] = {}
    for lane in lanes:
        cost = costs.estimate(lane.model, lane.gpu_type, lane.width, lane.height, lane.frames, lane.steps)
        if cost.source == FALLBACK:
            continue
        rates[lane.worker] = (cost.per_shot, cost.seconds_per_frame)
        in_flight = cost.seconds * (1.0 - lane.progress) if lane.running else 0.0
        free[lane.worker] = free.get(lane.worker, 0.0) + in_flight
    if not rates:
        return None
    end = max(free.values())
    for frames in queued:
        worker = min(rates, key=lambda name: free[name] + rates[name][0] + frames * rates[name][1])
        free[worker] += rates[worker][0] + frames * rates[worker][1]
        end = max(end, free[worker])
    return end


def _lanes(connection: Connection, job_ids: list[int]) -> list[_Lane]:
    """The current attempts of the jobs' running shots; for a job with none running, its latest attempt."""
    columns = (
        Shot.c.job_id, Render.c.worker, Render.c.gpu_type, Render.c.model, Render.c.width, Render.c.height,
        Render.c.steps, Render.c.frames, Render.c.progress,
    )  # fmt: skip
    joined = select(*columns).join(Render, Render.c.id == Shot.c.current_render_id).where(Render.c.model.is_not(None))
    running = connection.execute(joined.where(Shot.c.job_id.in_(job_ids), Shot.c.state == ShotState.RUNNING)).all()
    lanes = [_Lane(*row, running=True) for row in running]
    idle = sorted(set(job_ids) - {lane.job_id for lane in lanes})
    for job_id in idle:
        latest = connection.execute(
            joined.where(Shot.c.job_id == job_id).order_by(Shot.c.current_render_id.desc()).limit(1)
        ).one_or_none()
        if latest is not None:
            lanes.append(_Lane(*latest, running=False))
    return lanes
