"""The input snapshot store: copies taken at submit survive edits to the originals, once per content."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from farm.digests import file_sha256
from farm.errors import MediaError
from farm.media.snapshots import SnapshotStore


def _stored_files(root: Path) -> list[Path]:
    return [path for path in root.rglob("*") if path.is_file() and ".staging" not in path.parts]


def test_overwriting_the_original_leaves_the_snapshot(tmp_path: Path) -> None:
    portrait = tmp_path / "Anna.PNG"
    portrait.write_bytes(b"original portrait")
    store = SnapshotStore(tmp_path / "inputs")
    snapshot = store.put(portrait)
    portrait.write_bytes(b"saved over at 2 a.m.")
    stored = store.path_of(snapshot)
    assert stored.read_bytes() == b"original portrait"
    assert snapshot.sha256 == file_sha256(stored)
    assert snapshot.relative == f"{snapshot.sha256[:2]}/{snapshot.sha256}.png"
    assert not Path(snapshot.relative).is_absolute()


def test_the_same_content_is_stored_once(tmp_path: Path) -> None:
    first = tmp_path / "a.wav"
    second = tmp_path / "b.wav"
    first.write_bytes(b"dialogue")
    second.write_bytes(b"dialogue")
    store = SnapshotStore(tmp_path / "inputs")
    assert store.put(first) == store.put(second) == store.put(first)
    assert len(_stored_files(store.root)) == 1
    assert list((store.root / ".staging").iterdir()) == []


def test_a_tampered_snapshot_is_refused_by_name(tmp_path: Path) -> None:
    dialogue = tmp_path / "scene.wav"
    dialogue.write_bytes(b"lines")
    store = SnapshotStore(tmp_path / "inputs")
    snapshot = store.put(dialogue)
    (store.root / snapshot.relative).write_bytes(b"silence")
    with pytest.raises(MediaError, match=snapshot.sha256[:2] + "/" + snapshot.sha256):
        store.path_of(snapshot)
    (store.root / snapshot.relative).unlink()
    with pytest.raises(MediaError, match="missing"):
        store.path_of(snapshot)


def test_a_missing_source_is_a_located_error(tmp_path: Path) -> None:
    store = SnapshotStore(tmp_path / "inputs")
    with pytest.raises(MediaError, match=r"nowhere\.png"):
        store.put(tmp_path / "nowhere.png")
    assert _stored_files(store.root) == []


def test_snapshots_honour_the_umask(tmp_path: Path) -> None:
    portrait = tmp_path / "p.png"
    portrait.write_bytes(b"pixels")
    previous = os.umask(0o027)
    try:
        snapshot = SnapshotStore(tmp_path / "inputs").put(portrait)
    finally:
        os.umask(previous)
    mode = stat.S_IMODE((tmp_path / "inputs" / snapshot.relative).stat().st_mode)
    assert mode == 0o640
