"""Archives built byte by byte for tests, hostile ones included (names with '..', absolute names, links)."""

from __future__ import annotations

import io
import tarfile


def tar_gz(members: dict[str, bytes], *, links: dict[str, str] | None = None) -> bytes:
    """A tar.gz holding ``members`` (name -> bytes) exactly as named, and symbolic ``links`` (name -> target)."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
        for name, target in (links or {}).items():
            info = tarfile.TarInfo(name)
            info.type = tarfile.SYMTYPE
            info.linkname = target
            archive.addfile(info)
    return buffer.getvalue()
