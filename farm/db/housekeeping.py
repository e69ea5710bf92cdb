"""What the database says about files on disk nobody needs: the facts the debris sweep and ``farm gc`` act on.

A partial render or a half-assembled edit is only debris once no live process can still own it, and an
artifact is only garbage once no edit or live job needs its key. Both questions are answered here, from the
rows alone; ``farm.jobs.debris`` and ``farm.jobs.gc`` look at the files.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import ColumnElement, Connection, delete, exists, or_, select

from farm import defaults
from farm.db.columns import utcnow
from farm.db.records import ArtifactInfo, field_names, from_values
from farm.db.retry import transaction
from farm.db.session import Database
from farm.db.states import AttemptState, JobState
from farm.db.tables import Artifact, Edit, Job, Render, RenderClaim, Shot

_ARTIFACT_FIELDS = field_names(ArtifactInfo)

LIVE_JOB_STATES = frozenset(
    {JobState.QUEUED, JobState.RENDERING, JobState.ASSEMBLING, JobState.CHECKING, JobState.RETAKING}
)
"""A job in one of these still needs its shots' artifacts (to render from, to cache-hit, to assemble)."""


@dataclass(frozen=True)
class LiveWork:
    """What may own a temporary file right now: the oldest running attempt's start (None: none runs), the
    jobs a live driver holds (an assembly may be under way there), and every job's recorded edit versions."""

    oldest_running_start: datetime | None
    driven_jobs: frozenset[int]
    edit_versions: dict[int, frozenset[int]]


@transaction
def live_work(db: Database, *, now: datetime | None = None) -> LiveWork:
    """The running attempts, driven jobs and recorded edits, read in one transaction."""
    now = now or utcnow()
    stale = now - timedelta(seconds=defaults.STALE_AFTER_HEARTBEATS * defaults.HEARTBEAT_SECONDS)
    with db.read() as connection:
        oldest = connection.execute(
            select(Render.c.started_at)
            .where(Render.c.state == AttemptState.RUNNING)
            .order_by(Render.c.started_at)
            .limit(1)
        ).scalar_one_or_none()
        driven = connection.execute(
            select(Job.c.id).where(Job.c.driver_id.is_not(None), Job.c.driver_heartbeat_at > stale)
        ).scalars()
        driven_jobs = frozenset(driven)
        versions: dict[int, set[int]] = {}
        for job_id, version in connection.execute(select(Edit.c.job_id, Edit.c.version)).all():
            versions.setdefault(job_id, set()).add(version)
    return LiveWork(oldest, driven_jobs, {job: frozenset(numbers) for job, numbers in versions.items()})


def _referenced(cache_key: ColumnElement[str]) -> ColumnElement[bool]:
    """The condition "some shot of a live job, or of a job with an edit, has this cache key, or an attempt
    holds a claim on it": such an artifact is needed (a done job's latest edit was made from its shots'
    current keys, and a re-key sends the job back to a live state)."""
    live_or_edited = or_(Job.c.state.in_(sorted(LIVE_JOB_STATES)), exists().where(Edit.c.job_id == Job.c.id))
    shot_needs = exists().where(Shot.c.cache_key == cache_key, Shot.c.job_id == Job.c.id, live_or_edited)
    claimed = exists().where(RenderClaim.c.cache_key == cache_key)
    return or_(shot_needs, claimed)


@transaction
def unreferenced_artifacts(db: Database, *, created_before: datetime) -> tuple[ArtifactInfo, ...]:
    """Artifacts recorded before ``created_before`` that no live job, no job with an edit and no claim
    needs, oldest first: what ``farm gc`` may remove."""
    with db.read() as connection:
        rows = connection.execute(
            select(*(Artifact.c[name] for name in _ARTIFACT_FIELDS))
            .where(Artifact.c.created_at < created_before, ~_referenced(Artifact.c.cache_key))
            .order_by(Artifact.c.created_at, Artifact.c.id)
        ).all()
    return tuple(
        from_values(ArtifactInfo, _ARTIFACT_FIELDS, db.paths.resolve_row(_ARTIFACT_FIELDS, row)) for row in rows
    )


@transaction
def delete_unreferenced(db: Database, artifact_ids: Sequence[int], *, created_before: datetime) -> frozenset[int]:
    """Delete those of ``artifact_ids`` still unreferenced (checked again in the deleting transaction: a
    job submitted since the listing keeps its keys); returns the ids deleted. Shots naming a deleted row
    keep their state (the foreign key is SET NULL); their next render records the key again."""
    if not artifact_ids:
        return frozenset()
    with db.write() as connection:
        return _delete_in(connection, artifact_ids, created_before)


def _delete_in(connection: Connection, artifact_ids: Sequence[int], created_before: datetime) -> frozenset[int]:
    deleted = connection.execute(
        delete(Artifact)
        .where(
            Artifact.c.id.in_(list(artifact_ids)),
            Artifact.c.created_at < created_before,
            ~_referenced(Artifact.c.cache_key),
        )
        .returning(Artifact.c.id)
    ).scalars()
    return frozenset(deleted)
