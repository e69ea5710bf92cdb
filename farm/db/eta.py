"""A job's ETA from the learned costs (``farm.db.costs``): its remaining shots on the workers rendering it.

Each worker rendering the job now (one of its shots is running there; with none running, the worker of its
latest attempt) would need ``shots_left x per_shot + frames_left x seconds_per_frame`` seconds alone, at its
GPU type's learned rate for the size it renders. Together they finish in ``1 / sum(1 / T_worker)`` (their
rates add), and not before the longest render in flight ends. A job whose workers' costs are all unknown has
no costed ETA (the caller falls back to its observed frames per second). The reads go through the shots'
``job_id, state`` index and the cost model's covering index, never through all of a job's attempts.
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
    for job_id in wanted:
        mine = [lane for lane in lanes if lane.job_id == job_id]
        eta = _eta(costs, remaining[job_id], mine)
        if eta is not None:
            etas[job_id] = eta
    return etas


def _eta(costs: CostModel, left: Remaining, lanes: list[_Lane]) -> float | None:
    rate = 0.0
    tail = 0.0
    workers: set[str] = set()
    for lane in lanes:
        cost = costs.estimate(lane.model, lane.gpu_type, lane.width, lane.height, lane.frames)
        if cost.source == FALLBACK:
            continue
        if lane.running:
            tail = max(tail, cost.seconds * (1.0 - lane.progress))
        if lane.worker in workers:
            continue
        workers.add(lane.worker)
        alone = left.shots * cost.per_shot + left.frames * cost.seconds_per_frame
        if alone > 0:
            rate += 1.0 / alone
    if not workers:
        return None
    return max(1.0 / rate if rate > 0 else 0.0, tail)


def _lanes(connection: Connection, job_ids: list[int]) -> list[_Lane]:
    """The current attempts of the jobs' running shots; for a job with none running, its latest attempt."""
    columns = (
        Shot.c.job_id, Render.c.worker, Render.c.gpu_type, Render.c.model, Render.c.width, Render.c.height,
        Render.c.frames, Render.c.progress,
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
