"""Claims on cache keys: one render per key, farm-wide, however many jobs need it.

The cache check sees only finished artifacts, so two jobs sharing a shot (two ``farm render`` of one shot
list, or the manager and a terminal) would both render it. An attempt therefore claims its cache key in the
transaction that starts it: a ``render_claims`` row naming the attempt (its render id, the fencing token),
the process that dispatched it, and when the claim lapses. The driver's heartbeat thread renews the expiry
of its running attempts' claims with every beat (``renew_driven_claims``), not the dispatching loop, so a
loop held up by a starved CPU or a long call keeps its claims, while a dead driver's lapse with its
heartbeat; the attempt's end releases it (``farm.db.shots.finish_attempt``). A claim whose attempt is
no longer running, or whose expiry has passed (its driver died), may be taken over by the next attempt.
Another job's shot that finds the key claimed is not dispatched: it waits (``shot.waiting``) and is served
from the cache when the artifact lands.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import Connection, delete, select, update

from farm.db.columns import dialect_insert, utcnow
from farm.db.events import event_row, write_events
from farm.db.kinds import ArtifactKind, EventKind
from farm.db.retry import transaction
from farm.db.session import Database
from farm.db.states import AttemptState, LostRace
from farm.db.tables import Artifact, Job, Render, RenderClaim, Shot


@dataclass(frozen=True)
class ClaimRequest:
    """What an attempt claims when it starts: its shot's cache key, for whom, for how long unless renewed."""

    cache_key: str
    holder: str
    lease_seconds: float
    seen_artifact_id: int | None = None
    """The key's artifact row the caller's cache check saw and found wanting (its file truncated or gone),
    None if it saw none: any other row means the key landed since, and the claim is refused (KeyRecorded)."""


@dataclass(frozen=True)
class ClaimInfo:
    """A live claim another attempt holds: which attempt (job, shot, attempt number), whose, until when."""

    cache_key: str
    render_id: int
    holder: str
    expires_at: datetime
    job_id: int
    shot_id: str
    attempt_no: int

    def reason(self) -> str:
        return (
            f"waits for cache key {self.cache_key[:12]}, which job {self.job_id} shot {self.shot_id} "
            f"(attempt {self.attempt_no}, {self.holder}) is rendering; it is served from the cache when that lands"
        )


class KeyRecorded(Exception):
    """The key's artifact was recorded after the caller's cache check: serve the shot from the cache."""


class KeyClaimed(Exception):
    """The cache key is being rendered by another attempt (``claim``): the shot waits for it."""

    def __init__(self, claim: ClaimInfo) -> None:
        super().__init__(claim.reason())
        self.claim = claim


def take_claim(connection: Connection, request: ClaimRequest, *, render_id: int, now: datetime) -> None:
    """Claim ``request.cache_key`` for attempt ``render_id`` inside the caller's transaction, or raise
    KeyClaimed naming the live claim (the caller's transaction then rolls back, attempt and all).

    Refused with KeyRecorded when the key's artifact has landed since the caller's cache check.

    Insert-or-take-over: a new key is inserted (ON CONFLICT DO NOTHING, so two inserters cannot both win);
    an existing claim is locked (FOR UPDATE on PostgreSQL; SQLite's BEGIN IMMEDIATE has serialised writers
    already), judged live or lapsed with fresh reads, and taken over by compare-and-set on its render id.
    """
    expires_at = now + timedelta(seconds=request.lease_seconds)
    values = {"render_id": render_id, "holder": request.holder, "claimed_at": now, "expires_at": expires_at}
    insert_claim = (
        dialect_insert(connection)(RenderClaim)
        .values(cache_key=request.cache_key, **values)
        .on_conflict_do_nothing(index_elements=[RenderClaim.c.cache_key])
        .returning(RenderClaim.c.cache_key)
    )
    # Twice at most: a claim released between our insert and our lock (its attempt ended) is inserted anew.
    for _ in range(2):
        if connection.execute(insert_claim).scalar_one_or_none() is not None or _take_over(
            connection, request, values, now
        ):
            break
    else:
        raise LostRace(f"cache key {request.cache_key[:12]}: its claim kept changing hands; try again")
    # Checked after the claim is won, in a statement of its own (a fresh snapshot on PostgreSQL): an attempt
    # that finished between the caller's cache check and this claim has recorded its artifact by now.
    recorded = connection.execute(
        select(Artifact.c.id).where(
            Artifact.c.cache_key == request.cache_key, Artifact.c.kind == ArtifactKind.SHOT_VIDEO
        )
    ).scalar_one_or_none()
    if recorded is not None and recorded != request.seen_artifact_id:
        raise KeyRecorded(f"cache key {request.cache_key[:12]} was rendered meanwhile (artifact {recorded})")


def _take_over(connection: Connection, request: ClaimRequest, values: dict[str, object], now: datetime) -> bool:
    """Take a lapsed claim over; False when there was none any more, KeyClaimed when it is live."""
    held = connection.execute(
        select(RenderClaim.c.render_id).where(RenderClaim.c.cache_key == request.cache_key).with_for_update()
    ).scalar_one_or_none()
    if held is None:
        return False
    live = _live_claim(connection, request.cache_key, now)
    if live is not None:
        raise KeyClaimed(live)
    taken = connection.execute(
        update(RenderClaim)
        .where(RenderClaim.c.cache_key == request.cache_key, RenderClaim.c.render_id == held)
        .values(**values)
    ).rowcount
    if not taken:  # the row lock makes this unreachable; refuse rather than render twice
        raise LostRace(f"cache key {request.cache_key[:12]}: another attempt claimed it meanwhile")
    return True


@transaction
def renew_claims(db: Database, render_ids: Sequence[int], *, lease_seconds: float) -> int:
    """Push back the expiry of the claims these running attempts hold; returns how many were renewed."""
    if not render_ids:
        return 0
    with db.write() as connection:
        return connection.execute(
            update(RenderClaim)
            .where(RenderClaim.c.render_id.in_(list(render_ids)))
            .values(expires_at=utcnow() + timedelta(seconds=lease_seconds))
        ).rowcount


@transaction
def renew_driven_claims(db: Database, driver_id: str, *, lease_seconds: float) -> int:
    """Push back the expiry of every claim a running attempt of a job ``driver_id`` drives holds; returns how
    many were renewed. The heartbeat of the job's driver lease calls this: a job whose lease went to
    another driver (or whose driver died) renews nothing, so its claims lapse with its lease."""
    running = (
        select(Render.c.id)
        .join(Shot, Shot.c.id == Render.c.shot_id)
        .join(Job, Job.c.id == Shot.c.job_id)
        .where(Job.c.driver_id == driver_id, Render.c.state == AttemptState.RUNNING)
    )
    with db.write() as connection:
        return connection.execute(
            update(RenderClaim)
            .where(RenderClaim.c.render_id.in_(running))
            .values(expires_at=utcnow() + timedelta(seconds=lease_seconds))
        ).rowcount


@transaction
def hold_running_claims(db: Database, job_id: int, *, lease_seconds: float) -> tuple[str, ...]:
    """Renew the claims the job's running attempts still hold (none lost to a takeover) and return their
    keys. A driver that takes a dead driver's job over calls this before it recovers those attempts
    (``farm.db.shots.recover_orphans``): while they are still running and their claims live, no other
    attempt can claim the keys, so what their renders left in the store can be removed safely."""
    running = (
        select(Render.c.id)
        .join(Shot, Shot.c.id == Render.c.shot_id)
        .where(Shot.c.job_id == job_id, Render.c.state == AttemptState.RUNNING)
    )
    with db.write() as connection:
        keys = connection.execute(
            update(RenderClaim)
            .where(RenderClaim.c.render_id.in_(running))
            .values(expires_at=utcnow() + timedelta(seconds=lease_seconds))
            .returning(RenderClaim.c.cache_key)
        ).scalars()
        return tuple(sorted(keys))


def release_claim(connection: Connection, render_id: int) -> None:
    """Drop the claim attempt ``render_id`` holds (it ended), inside the caller's transaction."""
    connection.execute(delete(RenderClaim).where(RenderClaim.c.render_id == render_id))


@transaction
def record_waiting(db: Database, shot_pk: int, job_id: int, claim: ClaimInfo, *, by: str) -> None:
    """The audit line that says why a queued shot is not dispatched: another attempt renders its key."""
    data = {"cache_key": claim.cache_key, "render_id": claim.render_id, "job_id": claim.job_id}
    row = event_row(
        at=utcnow(), by=by, kind=EventKind.SHOT_WAITING, job_id=job_id, shot_pk=shot_pk, message=claim.reason(),
        data=data,
    )  # fmt: skip
    with db.write() as connection:
        write_events(connection, [row])


def _live_claim(connection: Connection, cache_key: str, now: datetime) -> ClaimInfo | None:
    row = connection.execute(
        select(
            RenderClaim.c.render_id, RenderClaim.c.holder, RenderClaim.c.expires_at,
            Render.c.state, Render.c.attempt_no, Shot.c.job_id, Shot.c.shot_id,
        )
        .join(Render, Render.c.id == RenderClaim.c.render_id)
        .join(Shot, Shot.c.id == Render.c.shot_id)
        .where(RenderClaim.c.cache_key == cache_key)
    ).one_or_none()  # fmt: skip
    if row is None or row.state != AttemptState.RUNNING or row.expires_at <= now:
        return None
    return ClaimInfo(cache_key, row.render_id, row.holder, row.expires_at, row.job_id, row.shot_id, row.attempt_no)
