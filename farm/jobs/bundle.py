"""Bundles: a shot list's folder packed for a farm that cannot see it, and unpacked there safely.

A laptop without the studio's shared storage sends ``farm submit ep07.yaml --upload``: the shot list's
folder, media included, as one tar.gz. The manager unpacks it under ``<data dir>/uploads/<sha256>``: named
by its content, so sending the same bundle twice unpacks it once and a repeated submit names the same
path. Unpacking trusts nothing in the archive: every member must be a plain file or folder whose name
stays inside the bundle (no absolute paths, no ``..``, no links or devices), and the archive, what it
unpacks to and its number of members are capped, so a hostile or broken bundle is refused before it
fills the disk. Members are written by this module, not by ``extractall``, so the checks are the
whole story.
"""

from __future__ import annotations

import gzip
import hashlib
import os
import secrets
import shutil
import stat
import tarfile
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import IO, BinaryIO

from farm.errors import BundleError, BundleTooLarge

CHUNK = 1 << 20
GIB = 1 << 30


@dataclass(frozen=True)
class BundleLimits:
    """The most a bundle may be: bytes sent, bytes unpacked, files and folders in it."""

    max_bytes: int = 2 * GIB
    max_unpacked_bytes: int = 8 * GIB
    max_members: int = 10_000


@dataclass(frozen=True)
class UnpackedBundle:
    """A bundle unpacked under the uploads folder; ``created`` is False when the same bundle was there."""

    root: Path
    sha256: str
    created: bool

    def member(self, name: str) -> Path:
        """The file ``name`` (a path inside the bundle, such as ``ep07.yaml``), which must exist."""
        path = self.root.joinpath(*_safe_parts(name))
        if not path.is_file():
            inside = sorted(str(p.relative_to(self.root)) for p in self.root.rglob("*.y*ml"))[:20]
            listing = ", ".join(inside) or "no YAML file at all"
            raise BundleError(f"the bundle has no file {name!r}; name the shot list inside it (it holds {listing})")
        return path


def pack_bundle(folder: Path, into: BinaryIO, *, limits: BundleLimits | None = None) -> int:
    """Write ``folder``'s files (recursively, names relative to it) to ``into`` as tar.gz; returns how many.

    BundleTooLarge before anything is written when the folder holds more than ``limits`` accepts.
    """
    limits = limits or BundleLimits()
    files = sorted(path for path in folder.rglob("*") if path.is_file())
    total = sum(path.stat().st_size for path in files)
    if total > limits.max_unpacked_bytes or len(files) > limits.max_members:
        raise BundleTooLarge(
            f"{folder} holds {len(files)} files, {_size(total)}: over what a bundle may carry "
            f"({limits.max_members} files, {_size(limits.max_unpacked_bytes)}); put the shot list in a "
            "folder of its own with only its media"
        )
    # The same folder packs to the same bytes (no timestamp in the gzip header, no owner in the members), so
    # a repeated upload unpacks to the same folder and repeats the same request for its idempotency key.
    with gzip.GzipFile(fileobj=into, mode="wb", mtime=0) as compressed:
        with tarfile.open(fileobj=compressed, mode="w", format=tarfile.PAX_FORMAT) as archive:
            for path in files:
                archive.add(path, arcname=path.relative_to(folder).as_posix(), recursive=False, filter=_anonymous)
    return len(files)


def _anonymous(member: tarfile.TarInfo) -> tarfile.TarInfo:
    member.uid = member.gid = 0
    member.uname = member.gname = ""
    return member


def unpack_bundle(source: IO[bytes], uploads: Path, *, limits: BundleLimits | None = None) -> UnpackedBundle:
    """Unpack the tar.gz, tar or zip read from ``source`` into ``uploads/<sha256>``.

    BundleTooLarge or BundleError (and nothing left behind) when the bundle is over ``limits``, not an
    archive, or holds a member that is not a plain file or folder inside it.
    """
    limits = limits or BundleLimits()
    uploads.mkdir(parents=True, exist_ok=True)
    with _received(source, uploads, limits) as (received, sha256):
        final = uploads / sha256
        if final.is_dir():
            return UnpackedBundle(final, sha256, created=False)
        staging = uploads / f".unpacking-{sha256[:16]}-{secrets.token_hex(4)}"
        try:
            staging.mkdir()
            _extract(received, staging, limits)
            try:
                staging.rename(final)
            except OSError:  # the same bundle, unpacked by a concurrent upload meanwhile
                if not final.is_dir():
                    raise
                shutil.rmtree(staging)
                return UnpackedBundle(final, sha256, created=False)
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise
    return UnpackedBundle(final, sha256, created=True)


@contextmanager
def _received(source: IO[bytes], uploads: Path, limits: BundleLimits) -> Iterator[tuple[Path, str]]:
    """``source`` copied to a temporary file in ``uploads`` (removed afterwards), and its SHA-256."""
    received = uploads / f".incoming-{secrets.token_hex(8)}"
    digest, size = hashlib.sha256(), 0
    try:
        with received.open("wb") as file:
            while chunk := source.read(CHUNK):
                size += len(chunk)
                if size > limits.max_bytes:
                    raise BundleTooLarge(
                        f"the bundle is over {_size(limits.max_bytes)}, the most the farm accepts; send the "
                        "shot list's path on the shared storage instead, or a bundle of only its media"
                    )
                digest.update(chunk)
                file.write(chunk)
        if size == 0:
            raise BundleError("the bundle is empty; send a tar.gz or zip of the shot list's folder")
        yield received, digest.hexdigest()
    finally:
        received.unlink(missing_ok=True)


def _extract(archive: Path, into: Path, limits: BundleLimits) -> None:
    if zipfile.is_zipfile(archive):
        _extract_zip(archive, into, limits)
        return
    try:
        tar = tarfile.open(archive, mode="r:*")  # noqa: SIM115 - closed below; opening is what tells "no archive"
    except tarfile.TarError as exc:
        raise BundleError(f"the bundle is not a tar.gz, tar or zip archive ({exc})") from exc
    with tar:
        _extract_tar(tar, into, limits)


def _extract_tar(tar: tarfile.TarFile, into: Path, limits: BundleLimits) -> None:
    budget = _Budget(limits)
    try:
        for member in tar:
            budget.count(member.name)
            parts = _safe_parts(member.name)
            if member.isdir():
                into.joinpath(*parts).mkdir(parents=True, exist_ok=True)
            elif member.isreg():
                source = tar.extractfile(member)
                if source is None:
                    raise BundleError(f"bundle member {member.name!r} cannot be read")
                with source:
                    _write_member(source, into.joinpath(*parts), budget, member.name)
            else:
                raise BundleError(
                    f"bundle member {member.name!r} is a link or a device; a bundle holds only plain files and folders"
                )
    except (tarfile.TarError, EOFError, OSError) as exc:
        raise BundleError(f"the bundle is damaged: {exc}") from exc


def _extract_zip(archive: Path, into: Path, limits: BundleLimits) -> None:
    budget = _Budget(limits)
    try:
        with zipfile.ZipFile(archive) as bundle:
            for info in bundle.infolist():
                budget.count(info.filename)
                parts = _safe_parts(info.filename)
                mode = info.external_attr >> 16
                if stat.S_ISLNK(mode):
                    raise BundleError(f"bundle member {info.filename!r} is a link; a bundle holds only plain files")
                if info.is_dir():
                    into.joinpath(*parts).mkdir(parents=True, exist_ok=True)
                    continue
                with bundle.open(info) as source:
                    _write_member(source, into.joinpath(*parts), budget, info.filename)
    except (zipfile.BadZipFile, EOFError, OSError) as exc:
        raise BundleError(f"the bundle is damaged: {exc}") from exc


class _Budget:
    """What is left of a bundle's limits while it unpacks (a member's own size header is not trusted)."""

    def __init__(self, limits: BundleLimits) -> None:
        self.limits = limits
        self.members = 0
        self.bytes = 0

    def count(self, name: str) -> None:
        self.members += 1
        if self.members > self.limits.max_members:
            raise BundleTooLarge(f"the bundle holds more than {self.limits.max_members} files and folders")

    def spend(self, size: int, name: str) -> None:
        self.bytes += size
        if self.bytes > self.limits.max_unpacked_bytes:
            raise BundleTooLarge(
                f"the bundle unpacks to more than {_size(self.limits.max_unpacked_bytes)} (at {name!r})"
            )


def _write_member(source: IO[bytes], path: Path, budget: _Budget, name: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0)
    try:
        descriptor = os.open(path, flags, 0o666)  # the umask decides, as for every file farm writes
    except FileExistsError:
        raise BundleError(f"bundle member {name!r} appears twice") from None
    with os.fdopen(descriptor, "wb") as file:
        while chunk := source.read(CHUNK):
            budget.spend(len(chunk), name)
            file.write(chunk)


def _size(count: int) -> str:
    for unit, scale in (("GiB", GIB), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if count >= scale:
            return f"{count / scale:.1f} {unit}"
    return f"{count} bytes"


def _safe_parts(name: str) -> tuple[str, ...]:
    """The parts of a member's name, refused unless it is a relative path that stays inside the bundle."""
    if "\\" in name or "\x00" in name:
        raise BundleError(f"bundle member {name!r}: names use '/' and no backslash or NUL")
    path = PurePosixPath(name)
    parts = tuple(part for part in path.parts if part not in ("", "."))
    if path.is_absolute() or not parts or ".." in parts or ":" in parts[0]:
        raise BundleError(
            f"bundle member {name!r} is outside the bundle; every name must be relative, with no '..' (refused)"
        )
    return parts
