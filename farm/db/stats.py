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
        .where(Event.kind == EventKind.SHOT_REQUEUED, Event.message.like("retake: %"))
    )
    with db.read() as connection:
        jobs = connection.execute(select(Job.state, func.count()).group_by(Job.state)).all()
        attempts = connection.execute(select(Render.state, func.count()).group_by(Render.state)).all()
        sent = connection.execute(
            select(Notification.channel, Notification.state, func.count()).group_by(
                Notification.channel, Notification.state
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
    model = Shot.spec["model"].as_string()
    rows = connection.execute(
        select(
            Job.project, model, Shot.state, func.count(), func.coalesce(func.sum(case((Shot.cached, 1), else_=0)), 0)
        )
        .join(Job, Job.id == Shot.job_id)
        .group_by(Job.project, model, Shot.state)
    )
    return tuple(
        ShotTally(show, name or "", state, int(count), int(cached)) for show, name, state, count, cached in rows
    )


def _model_tallies(connection: Connection) -> tuple[ModelTally, ...]:
    model = Shot.spec["model"].as_string()
    rendered = (Shot.state == ShotState.DONE) & ~Shot.cached
    rows = connection.execute(
        select(
            model,
            func.coalesce(func.sum(Shot.gpu_seconds), 0.0),
            func.coalesce(func.sum(case((rendered, Shot.frames), else_=0)), 0),
            func.coalesce(func.sum(case((rendered, Shot.gpu_seconds), else_=0.0)), 0.0),
        ).group_by(model)
    )
    return tuple(ModelTally(name or "", float(gpu), int(frames), float(done)) for name, gpu, frames, done in rows)


def _failures(connection: Connection) -> dict[str, int]:
    rows = connection.execute(
        select(Render.error_class, func.count())
        .where(Render.state.in_([AttemptState.FAILED, AttemptState.CRASHED]))
        .group_by(Render.error_class)
    )
    return {error_class or "unknown": int(count) for error_class, count in rows}
