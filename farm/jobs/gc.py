"""``farm gc``: the artifact store's renders nothing needs any more, removed (rows and files).

Retakes and re-submitted shot lists re-key shots, and the renders of the old keys stay in the store for
ever otherwise. An artifact is kept while a live job (queued, rendering, assembling, checking, retaking)
has a shot with its key, while a job with an edit has (a done job's latest edit was made from its shots'
current keys: a re-key sends the job back to a live state), and while an attempt claims the key; and it is
kept until it is older than ``older_than_seconds`` (30 days), so a failed or cancelled job's renders are
still there to resume from for a while. An edit's own files never depend on the store: its ``media``
folder holds hard links (or copies) of the renders it used.

The database rows go first, in one transaction that checks each one is still unreferenced (a job submitted
meanwhile keeps its keys), then the files; a file that changed since the listing (a new render of the key
published in between) is left alone.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

from farm import defaults
from farm.db.columns import utcnow
from farm.db.housekeeping import delete_unreferenced, unreferenced_artifacts
from farm.db.records import ArtifactInfo
from farm.db.session import Database

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class GcSummary:
    """What ``collect_garbage`` removed, or with ``dry_run`` would remove: artifacts, their keys, bytes."""

    dry_run: bool
    older_than_seconds: float
    artifacts: int
    bytes: int
    cache_keys: tuple[str, ...]

    def to_json(self) -> dict[str, object]:
        return {
            "dry_run": self.dry_run,
            "older_than_seconds": self.older_than_seconds,
            "artifacts": self.artifacts,
            "bytes": self.bytes,
            "cache_keys": list(self.cache_keys),
        }


def collect_garbage(
    db: Database, *, older_than_seconds: float = defaults.GC_OLDER_THAN_SECONDS, dry_run: bool = False
) -> GcSummary:
    """Remove (or, with ``dry_run``, only count) the artifacts no edit or live job references that were
    recorded more than ``older_than_seconds`` ago; see the module docstring for what is kept."""
    created_before = utcnow() - timedelta(seconds=older_than_seconds)
    candidates = unreferenced_artifacts(db, created_before=created_before)
    seen = {artifact.id: _file_identity(Path(artifact.path)) for artifact in candidates}
    if dry_run:
        chosen = candidates
    else:
        deleted = delete_unreferenced(db, [artifact.id for artifact in candidates], created_before=created_before)
        chosen = tuple(artifact for artifact in candidates if artifact.id in deleted)
        for artifact in chosen:
            _remove_file(artifact, seen[artifact.id])
    freed = sum(identity[2] for artifact in chosen if (identity := seen[artifact.id]) is not None)
    keys = tuple(sorted({artifact.cache_key for artifact in chosen}))
    return GcSummary(dry_run, older_than_seconds, len(chosen), freed, keys)


def _file_identity(path: Path) -> tuple[int, int, int] | None:
    """(device, inode, size) of the file, None if it is gone: what tells the listed file from a new one."""
    try:
        status = path.stat()
    except FileNotFoundError:
        return None
    return status.st_dev, status.st_ino, status.st_size


def _remove_file(artifact: ArtifactInfo, listed: tuple[int, int, int] | None) -> None:
    path = Path(artifact.path)
    if listed is None or _file_identity(path) != listed:
        return  # gone already, or a new render of the key was published since the listing
    try:
        os.unlink(path)
    except FileNotFoundError:
        return
    log.info("gc removed %s (%s, %d bytes)", path, artifact.kind, listed[2])
