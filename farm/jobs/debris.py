"""Nothing half-done stays: the debris a dead process left on disk, swept when a driver or the manager starts.

Every file farm writes goes to a hidden temporary beside its destination first (``farm.files``), so what a
killed process leaves is recognisable by name: ``.<key>.<random>.part.mp4`` / ``.part.wav`` / ``.npz`` in
the artifact store (a render lost with its node), ``.staging`` copies in the input snapshot store, and in an
edit folder the ``.assemble.*`` work folder and other hidden temporaries. An edit version folder that no
edit row names is an assembly that crashed before it was recorded.

A file is only swept once no live process can own it. A render's temporary is younger than its attempt, so
one older than the oldest running attempt's start (and than ``DEBRIS_MIN_AGE_SECONDS`` whatever the clocks
say) belongs to nobody; an edit folder is only an assembly in progress while a live driver holds its job's
lease. Each removal is logged.

What a render leaves when it dies goes sooner where its key's claim proves nobody else can be writing
there: the scheduler removes a lost worker's temporaries as it records the crash, and a driver taking a
dead driver's job over removes those of the attempts it recovers (``recover_lost_attempts``).
"""

from __future__ import annotations

import logging
import os
import re
import shutil
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from farm import defaults
from farm.db.claims import hold_running_claims
from farm.db.columns import utcnow
from farm.db.housekeeping import LiveWork, live_work
from farm.db.session import Database
from farm.db.shots import recover_orphans
from farm.engine.artifacts import TEMPORARY, ArtifactStore
from farm.engine.cluster import reap_dead_local_rays
from farm.engine.messages import EngineEvent, EngineEventKind, Observer
from farm.settings import Settings

log = logging.getLogger(__name__)

_JOB_FOLDER = re.compile(r"^job-(\d+)$")
_VERSION_FOLDER = re.compile(r"^v(\d{3,})$")


@dataclass(frozen=True)
class SweptDebris:
    """What a sweep removed: each path (a file or a folder), and the bytes freed."""

    paths: tuple[Path, ...]
    bytes: int

    def __bool__(self) -> bool:
        return bool(self.paths)


def sweep_debris(
    db: Database, settings: Settings, *, min_age_seconds: float = defaults.DEBRIS_MIN_AGE_SECONDS, by: str = "farm"
) -> SweptDebris:
    """Remove the temporaries and unrecorded edit folders under the data dir that no live attempt or
    assembly can own (see the module docstring); logs each one, and a summary if there were any."""
    now = utcnow()
    work = live_work(db, now=now)
    young = now.timestamp() - min_age_seconds
    render_cutoff = min(young, work.oldest_running_start.timestamp()) if work.oldest_running_start else young
    removed: list[tuple[Path, int]] = []
    removed += _sweep_store(settings.artifacts_dir, render_cutoff)
    removed += _sweep_folder(settings.data_dir / "inputs" / ".staging", young)
    removed += _sweep_edits(settings.edits_dir, work, young)
    swept = SweptDebris(tuple(path for path, _ in removed), sum(size for _, size in removed))
    if swept:
        log.info("%s swept %d leftover file(s) of dead processes (%d bytes)", by, len(swept.paths), swept.bytes)
    return swept


def _sweep_store(root: Path, cutoff: float) -> list[tuple[Path, int]]:
    """Temporaries in the artifact store's ``<key[:2]>`` folders last written before ``cutoff``."""
    removed: list[tuple[Path, int]] = []
    for shard in _entries(root):
        if shard.is_dir(follow_symlinks=False):
            removed += _remove_old(
                (entry for entry in _entries(Path(shard.path)) if TEMPORARY.match(entry.name)), cutoff
            )
    return removed


def _sweep_folder(folder: Path, cutoff: float) -> list[tuple[Path, int]]:
    """Every file in a staging folder last written before ``cutoff``."""
    return _remove_old(_entries(folder), cutoff)


def _sweep_edits(root: Path, work: LiveWork, cutoff: float) -> list[tuple[Path, int]]:
    """Version folders no edit row names, of jobs no live driver holds, and hidden leftovers in recorded
    ones; only what was last changed before ``cutoff``."""
    removed: list[tuple[Path, int]] = []
    for job_folder in _entries(root):
        job = _JOB_FOLDER.match(job_folder.name)
        if job is None or not job_folder.is_dir(follow_symlinks=False):
            continue
        job_id = int(job.group(1))
        if job_id in work.driven_jobs:
            continue  # its driver may be assembling right now; it takes an unrecorded folder over itself
        recorded = work.edit_versions.get(job_id, frozenset())
        for entry in _entries(Path(job_folder.path)):
            version = _VERSION_FOLDER.match(entry.name)
            if entry.name.startswith("."):
                removed += _remove_old([entry], cutoff)
            elif version is not None and entry.is_dir(follow_symlinks=False):
                if int(version.group(1)) in recorded:
                    removed += _remove_old(
                        (inner for inner in _entries(Path(entry.path)) if inner.name.startswith(".")), cutoff
                    )
                else:
                    removed += _remove_old([entry], cutoff)
    return removed


def _entries(folder: Path) -> list[os.DirEntry[str]]:
    try:
        with os.scandir(folder) as listing:
            return list(listing)
    except (FileNotFoundError, NotADirectoryError):
        return []


def _remove_old(entries: Iterable[os.DirEntry[str]], cutoff: float) -> list[tuple[Path, int]]:
    """Remove each entry (file or folder) whose newest modification is before ``cutoff``; returns what went."""
    removed: list[tuple[Path, int]] = []
    for entry in entries:
        path = Path(entry.path)
        try:
            newest, size = _newest_and_size(path)
        except FileNotFoundError:
            continue  # gone meanwhile (its owner published or removed it)
        if newest >= cutoff:
            continue
        try:
            if path.is_dir() and not path.is_symlink():
                shutil.rmtree(path)
            else:
                path.unlink()
        except FileNotFoundError:
            continue
        log.info("removed %s (%d bytes, last written %s): left by a process that is gone", path, size,
                 datetime.fromtimestamp(newest).isoformat(timespec="seconds"))  # fmt: skip
        removed.append((path, size))
    return removed


def _newest_and_size(path: Path) -> tuple[float, int]:
    """The latest mtime in ``path`` (itself, or anything below it) and its total size."""
    status = path.lstat()
    if not path.is_dir() or path.is_symlink():
        return status.st_mtime, status.st_size
    newest, size = status.st_mtime, 0
    for folder, _, names in os.walk(path):
        newest = max(newest, os.lstat(folder).st_mtime)
        for name in names:
            inner = os.lstat(os.path.join(folder, name))
            newest, size = max(newest, inner.st_mtime), size + inner.st_size
    return newest, size


def recover_lost_attempts(
    db: Database, job_id: int, artifacts_dir: Path | None, *, by: str, lease_seconds: float
) -> int:
    """Take over the attempts a dead driver of ``job_id`` left running (``recover_orphans``: crashed, their
    shots queued again; returns how many), first removing the temporaries their renders left in the store
    under ``artifacts_dir`` (None: left to the start sweep). Only the keys whose claims those attempts still
    hold are touched, with the claims renewed first (``hold_running_claims``), so no other render of a key
    can be writing them; a render of the dead driver still running somewhere writes to a removed name and
    can record nothing (its attempt is fenced off)."""
    if artifacts_dir is not None:
        store = ArtifactStore(artifacts_dir)
        for key in hold_running_claims(db, job_id, lease_seconds=lease_seconds):
            try:
                store.remove_temporaries(key)
            except OSError as exc:  # debris costs disk, not correctness: the start sweep tries again
                log.warning("removing the partial files of key %s failed: %s", key[:12], exc)
    return recover_orphans(db, job_id, by=by)


def sweep_on_start(db: Database, settings: Settings, observe: Observer, *, by: str) -> SweptDebris:
    """The sweep a driver or the manager runs as it starts, said in one line when it removed anything, after
    stopping what the local Rays of killed farm processes left running (``farm.engine.ray_owners``). A
    file system error is logged and the start goes on: debris costs disk, not correctness."""
    try:
        reap_dead_local_rays()
        swept = sweep_debris(db, settings, by=by)
    except OSError as exc:
        log.warning("sweeping debris under %s failed: %s", settings.data_dir, exc)
        return SweptDebris((), 0)
    if swept:
        message = f"removed {len(swept.paths)} leftover file(s) of dead processes ({swept.bytes} bytes)"
        observe(EngineEvent(EngineEventKind.MESSAGE, message=message))
    return swept
