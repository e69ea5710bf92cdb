"""The content-addressed store of a job's inputs: portraits and dialogue copied at submit time.

An artist saving over a portrait at 2 a.m. must not fail a night's renders: the render reads the copy
taken at submit, which nothing edits. Copies live at ``<root>/<digest[:2]>/<digest><ext>``, named by the
sha256 of the bytes actually copied (hashed while copying, so a file changing mid-copy cannot be stored
under another file's digest); the same file submitted twice is stored once. Names are relative to the
root so workers on other nodes sharing the data dir find them.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

from farm.digests import file_sha256
from farm.errors import MediaError
from farm.files import publish, temporary_path

_BLOCK = 1 << 20


@dataclass(frozen=True)
class Snapshot:
    """One stored input: its digest and its path relative to the store's root."""

    sha256: str
    relative: str


@dataclass(frozen=True)
class SnapshotStore:
    """Inputs under ``root`` (``data_dir / "inputs"``), one file per distinct content."""

    root: Path

    def put(self, source: Path) -> Snapshot:
        """Copy ``source`` into the store; nothing is written when its content is there already.

        The source is hashed first, so a resubmit of unchanged inputs reads each file once and writes
        nothing; a copy is named by the digest of the bytes it holds (hashed while copying).
        """
        try:
            present = self._stored(file_sha256(source), source.suffix)
        except FileNotFoundError as error:
            raise MediaError(f"{source}: input file not found; check the path in the shot list") from error
        if present is not None:
            return present
        staging = self.root / ".staging"
        staging.mkdir(parents=True, exist_ok=True)
        temporary = temporary_path(staging / f"input{source.suffix.lower()}")
        try:
            digest = _copy_hashing(source, temporary)
            snapshot = _snapshot(digest, source.suffix)
            if self._stored(digest, source.suffix) is not None:
                return snapshot
            destination = self.root / snapshot.relative
            destination.parent.mkdir(parents=True, exist_ok=True)
            publish(temporary, destination)
            return snapshot
        finally:
            temporary.unlink(missing_ok=True)

    def _stored(self, digest: str, suffix: str) -> Snapshot | None:
        """The snapshot of content ``digest`` if the store holds it intact (a damaged copy is replaced)."""
        snapshot = _snapshot(digest, suffix)
        path = self.root / snapshot.relative
        return snapshot if path.is_file() and file_sha256(path) == digest else None

    def path_of(self, snapshot: Snapshot) -> Path:
        """The stored copy, checked: MediaError naming it if it is missing or no longer matches."""
        path = self.root / snapshot.relative
        if not path.is_file():
            raise MediaError(f"{path}: input snapshot is missing; submit the shot list again")
        if file_sha256(path) != snapshot.sha256:
            raise MediaError(
                f"{path}: input snapshot changed since it was stored (expected sha256 {snapshot.sha256}); "
                "submit the shot list again"
            )
        return path


def _snapshot(digest: str, suffix: str) -> Snapshot:
    return Snapshot(digest, f"{digest[:2]}/{digest}{suffix.lower()}")


def _copy_hashing(source: Path, destination: Path) -> str:
    digest = hashlib.sha256()
    try:
        with source.open("rb") as reader, destination.open("wb") as writer:
            for block in iter(lambda: reader.read(_BLOCK), b""):
                digest.update(block)
                writer.write(block)
    except FileNotFoundError as error:
        raise MediaError(f"{source}: input file not found; check the path in the shot list") from error
    return digest.hexdigest()
