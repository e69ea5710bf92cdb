"""What renders produce, as recorded: artifacts (files in the content-addressed store) and edit versions.

An artifact row is keyed by (cache key, kind) whichever job made it, so the cache spans jobs; recording
one is idempotent. An edit is a new version per assembly, none overwritten.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from sqlalchemy import Connection, func, insert, select
from sqlalchemy.exc import IntegrityError

from farm.db.columns import dialect_insert, utcnow
from farm.db.events import event_row, write_events, written_on_first_try
from farm.db.kinds import ArtifactKind, EventKind
from farm.db.machine import CAS_RETRIES, job_state_in
from farm.db.retry import transaction
from farm.db.session import Database
from farm.db.stored_paths import DataPaths
from farm.db.tables import Artifact, Edit
from farm.verdicts import Verdict


@dataclasses.dataclass(frozen=True)
class ArtifactRecord:
    """A file in the artifact store, as recorded in the artifacts table."""

    cache_key: str
    kind: ArtifactKind
    path: str
    bytes: int
    sha256: str
    frames: int | None = None
    duration: float | None = None


@transaction
def record_artifact(db: Database, record: ArtifactRecord) -> int:
    """The artifact row for (cache_key, kind), created if missing; returns its id.

    Idempotent: two workers recording the same key at once keep one row and both get its id; the row takes
    the values recorded last (the file on disk, which the store never replaces, as its worker measured it).
    """
    with db.write() as connection:
        return upsert_artifact(connection, record, paths=db.paths)


def upsert_artifact(connection: Connection, record: ArtifactRecord, *, paths: DataPaths) -> int:
    """``record_artifact`` inside the caller's transaction (a finished attempt records its files with it)."""
    record = dataclasses.replace(record, path=paths.to_stored(record.path))
    statement = (
        dialect_insert(connection)(Artifact)
        .values(**dataclasses.asdict(record), created_at=utcnow())
        .returning(Artifact.c.id)
    )
    # A key rendered again (its file had been truncated or removed) records the file now there: the row
    # always describes the bytes on disk, which the worker measured after publishing.
    refreshed = {"path": record.path, "bytes": record.bytes, "sha256": record.sha256}
    refreshed.update(frames=record.frames, duration=record.duration)
    statement = statement.on_conflict_do_update(index_elements=[Artifact.c.cache_key, Artifact.c.kind], set_=refreshed)
    return connection.execute(statement).scalar_one()


@dataclasses.dataclass(frozen=True)
class NewEdit:
    """An assembled, checked edit version, as the jobs layer hands it to the database."""

    video_path: str
    otio_path: str | None
    report_path: str | None
    verdict: Verdict
    summary: dict[str, Any]
    version: int | None = None
    """The number the edit's folder already has (its creation is the lock on disk); None: the next free one."""
    content_key: str | None = None
    """The identity of the edit's inputs (``farm.edit.content_key``), so a later run can re-use it."""
    reused_from_id: int | None = None
    """Set when this version re-uses an existing edit's files (same content key) instead of assembling."""


@transaction
def record_edit(db: Database, job_id: int, edit: NewEdit, *, by: str) -> tuple[int, int]:
    """A new edit version of ``job_id`` (1, 2, ...; none is overwritten); returns (edit id, version)."""
    for attempt in range(CAS_RETRIES):
        try:
            with db.write() as connection:
                return insert_edit(connection, job_id, edit, by=by, paths=db.paths)
        except IntegrityError:
            # Two assemblies of the same job picked the same version at once (PostgreSQL); take the next one.
            if edit.version is not None or attempt == CAS_RETRIES - 1:
                raise
    raise AssertionError("unreachable")


def insert_edit(connection: Connection, job_id: int, edit: NewEdit, *, by: str, paths: DataPaths) -> tuple[int, int]:
    """``record_edit`` inside the caller's transaction (the job's phase changes with it).

    A retry (``rerun_since``) whose first try recorded this edit and committed before its connection died
    gets that edit back instead of a second version."""
    job_state_in(connection, job_id)  # UnknownJob if there is none
    earlier = written_on_first_try(connection, by=by, kind=EventKind.EDIT_RECORDED, job_id=job_id)
    if earlier is not None and (earlier.data or {}).get("video") == edit.video_path:
        return int(earlier.data["edit_id"]), int(earlier.data["version"])
    version = edit.version
    if version is None:
        version = connection.execute(
            select(func.coalesce(func.max(Edit.c.version), 0) + 1).where(Edit.c.job_id == job_id)
        ).scalar_one()
    now = utcnow()
    edit_id = connection.execute(
        insert(Edit)
        .values(
            job_id=job_id,
            version=version,
            video_path=paths.to_stored(edit.video_path),
            otio_path=paths.to_stored(edit.otio_path),
            report_path=paths.to_stored(edit.report_path),
            verdict=edit.verdict,
            summary=edit.summary,
            created_at=now,
            content_key=edit.content_key,
            reused_from_id=edit.reused_from_id,
        )
        .returning(Edit.c.id)
    ).scalar_one()
    event = event_row(
        at=now,
        by=by,
        kind=EventKind.EDIT_RECORDED,
        job_id=job_id,
        message=f"edit v{version}: continuity {edit.verdict}"
        + (f" (re-uses edit {edit.reused_from_id})" if edit.reused_from_id is not None else ""),
        data={
            "edit_id": edit_id,
            "version": version,
            "verdict": edit.verdict.value,
            "video": edit.video_path,
            "content_key": edit.content_key,
            "reused_from": edit.reused_from_id,
        },
    )
    write_events(connection, [event])
    return edit_id, version
