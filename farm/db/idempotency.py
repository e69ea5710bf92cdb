"""Idempotency keys: a submit retried with the same ``Idempotency-Key`` gets the job the first one made.

A key belongs to its submitter (two editors may both use ``ep07-final``) and remembers the SHA-256 of the
request it came with, so the same key with another request is refused rather than answered with a job it
did not ask for. The key is written in the transaction that records the job (``farm.db.jobs.submit_job``):
of two submits racing with one key, the unique constraint lets exactly one job exist, and the loser reads
the winner's.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Connection, insert, select
from sqlalchemy.exc import IntegrityError

from farm.db.columns import utcnow
from farm.db.errors import IdempotencyConflict, IdempotencyKeyTaken
from farm.db.retry import transaction
from farm.db.session import Database
from farm.db.tables import NAME, IdempotencyKey
from farm.errors import InvalidValue


@dataclass(frozen=True)
class IdempotencyClaim:
    """A submit's key, who sent it, and the digest of what it asked for."""

    key: str
    submitted_by: str
    request_sha256: str

    def __post_init__(self) -> None:
        if not self.key or len(self.key) > NAME:
            raise InvalidValue("Idempotency-Key", f"an Idempotency-Key is 1-{NAME} characters, not {self.key!r}")


@transaction
def keyed_job(db: Database, claim: IdempotencyClaim) -> int | None:
    """The job a submit with this key already made (None if the key is new).

    IdempotencyConflict if the key was used for a different request.
    """
    with db.read() as connection:
        row = connection.execute(
            select(IdempotencyKey.c.job_id, IdempotencyKey.c.request_sha256).where(
                IdempotencyKey.c.submitted_by == claim.submitted_by, IdempotencyKey.c.key == claim.key
            )
        ).one_or_none()
    if row is None:
        return None
    if row.request_sha256 != claim.request_sha256:
        raise IdempotencyConflict(
            f"Idempotency-Key {claim.key!r} was used by {claim.submitted_by} for another request (job {row.job_id}); "
            "send a new key for a new request, or repeat the first request exactly to get its job",
            job_id=row.job_id,
        )
    return int(row.job_id)


def claim_key(connection: Connection, claim: IdempotencyClaim, job_id: int) -> None:
    """Record the key for ``job_id`` in the caller's transaction; IdempotencyKeyTaken (the transaction is
    then rolled back with its job) if a concurrent submit recorded it first."""
    try:
        connection.execute(
            insert(IdempotencyKey).values(
                key=claim.key,
                submitted_by=claim.submitted_by,
                request_sha256=claim.request_sha256,
                job_id=job_id,
                created_at=utcnow(),
            )
        )
    except IntegrityError as exc:
        raise IdempotencyKeyTaken(
            f"Idempotency-Key {claim.key!r} of {claim.submitted_by} was recorded by a concurrent submit"
        ) from exc
