"""The farm's totals for monitoring (``/metrics``): shots by show, model and state, GPU time and frames by
model, cache hits, attempts by outcome, failures by class, retakes; each one aggregate query.

Read at scrape time from the database rather than counted in the manager's memory, so the figures survive
a restart, agree across a standby taking over, and include work that lone drivers did.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Connection, case, func, select

from farm.db.kinds import EventKind
from farm.db.retry import transaction
from farm.db.session import Database
from farm.db.states import AttemptState, JobState, ShotState
from farm.db.tables import Event, Job, Notification, Render, Shot


@dataclass(frozen=True)
class ShotTally:
    show: str
    model: str
    state: ShotState
    shots: int
    cached: int
    """Of ``shots``, those served from the artifact cache (done without rendering)."""


@dataclass(frozen=True)
class ModelTally:
    model: str
    gpu_seconds: float
    """GPU time of every attempt of the model's shots (failed ones included: they were paid for)."""
    frames_rendered: int
    """Frames of the model's shots that rendered (not from the cache)."""
    rendered_gpu_seconds: float
    """GPU time of those shots: with ``frames_rendered``, the model's GPU-seconds per output frame."""


@dataclass(frozen=True)
class FarmStats:
    jobs: dict[JobState, int]
    shots: tuple[ShotTally, ...]
    models: tuple[ModelTally, ...]
    attempts: dict[AttemptState, int]
    failures: dict[str, int]
    """Failed and crashed attempts by error class."""
    retakes: int
    """Shots sent back to render again with a new recipe (continuity checks and producers' reviews)."""
    notifications: dict[tuple[str, str], int]
    """Notifications by (channel, delivery state)."""


@transaction
def farm_stats(db: Database) -> FarmStats:
    """Every total, in one read transaction (a consistent snapshot)."""
    retakes = (
        select(func.count())
        .select_from(Event)
        .where(Event.c.kind == EventKind.SHOT_REQUEUED, Event.c.message.like("retake: %"))
    )
    with db.read() as connection:
        jobs = connection.execute(select(Job.c.state, func.count()).group_by(Job.c.state)).all()
        attempts = connection.execute(select(Render.c.state, func.count()).group_by(Render.c.state)).all()
        sent = connection.execute(
            select(Notification.c.channel, Notification.c.state, func.count()).group_by(
                Notification.c.channel, Notification.c.state
            )
        ).all()
        return FarmStats(
            jobs={state: int(count) for state, count in jobs},
            shots=_shot_tallies(connection),
            models=_model_tallies(connection),
            attempts={state: int(count) for state, count in attempts},
            failures=_failures(connection),
            retakes=int(connection.execute(retakes).scalar_one()),
            notifications={(str(channel), str(state)): int(count) for channel, state, count in sent},
        )


def _shot_tallies(connection: Connection) -> tuple[ShotTally, ...]:
    model = Shot.c.spec["model"].as_string()
    rows = connection.execute(
        select(
            Job.c.project,
            model,
            Shot.c.state,
            func.count(),
            func.coalesce(func.sum(case((Shot.c.cached, 1), else_=0)), 0),
        )
        .join(Job, Job.c.id == Shot.c.job_id)
        .group_by(Job.c.project, model, Shot.c.state)
    )
    return tuple(
        ShotTally(show, name or "", state, int(count), int(cached)) for show, name, state, count, cached in rows
    )


def _model_tallies(connection: Connection) -> tuple[ModelTally, ...]:
    model = Shot.c.spec["model"].as_string()
    rendered = (Shot.c.state == ShotState.DONE) & ~Shot.c.cached
    rows = connection.execute(
        select(
            model,
            func.coalesce(func.sum(Shot.c.gpu_seconds), 0.0),
            func.coalesce(func.sum(case((rendered, Shot.c.frames), else_=0)), 0),
            func.coalesce(func.sum(case((rendered, Shot.c.gpu_seconds), else_=0.0)), 0.0),
        ).group_by(model)
    )
    return tuple(ModelTally(name or "", float(gpu), int(frames), float(done)) for name, gpu, frames, done in rows)


def _failures(connection: Connection) -> dict[str, int]:
    rows = connection.execute(
        select(Render.c.error_class, func.count())
        .where(Render.c.state.in_([AttemptState.FAILED, AttemptState.CRASHED]))
        .group_by(Render.c.error_class)
    )
    return {error_class or "unknown": int(count) for error_class, count in rows}
