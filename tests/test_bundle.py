"""Bundles: a shot list's folder packs to the same bytes every time, and unpacking refuses anything that
would reach outside the bundle or fill the disk, leaving nothing behind."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

import pytest

from farm.errors import BundleError, BundleTooLarge
from farm.jobs.bundle import BundleLimits, pack_bundle, unpack_bundle
from tests.bundles import tar_gz
from tests.shotlists import make_project


def packed(folder: Path) -> bytes:
    bundle = io.BytesIO()
    pack_bundle(folder, bundle)
    return bundle.getvalue()


def test_a_folder_packs_to_the_same_bytes_and_unpacks_once_by_its_digest(tmp_path: Path) -> None:
    project = make_project(tmp_path / "project").parent
    uploads = tmp_path / "uploads"

    first = unpack_bundle(io.BytesIO(packed(project)), uploads)
    second = unpack_bundle(io.BytesIO(packed(project)), uploads)

    assert (first.created, second.created) == (True, False)
    assert first.root == second.root == uploads / first.sha256
    assert first.member("ep.yaml").read_bytes() == (project / "ep.yaml").read_bytes()
    assert (first.root / "media" / "marcus.jpg").read_bytes() == (project / "media" / "marcus.jpg").read_bytes()
    assert sorted(path.name for path in uploads.iterdir()) == [first.sha256]


def test_a_missing_shot_list_names_what_the_bundle_holds(tmp_path: Path) -> None:
    bundle = unpack_bundle(io.BytesIO(tar_gz({"show/ep07.yaml": b"version: 1\n"})), tmp_path)

    with pytest.raises(BundleError, match=r"no file 'ep07.yaml'.*show/ep07.yaml"):
        bundle.member("ep07.yaml")
    with pytest.raises(BundleError, match="outside the bundle"):
        bundle.member("../ep07.yaml")


@pytest.mark.parametrize(
    ("archive", "message"),
    [
        (tar_gz({"../up.txt": b"x"}), "outside the bundle"),
        (tar_gz({"a/../../up.txt": b"x"}), "outside the bundle"),
        (tar_gz({"/etc/up.txt": b"x"}), "outside the bundle"),
        (tar_gz({"a\\..\\up.txt": b"x"}), "backslash"),
        (tar_gz({"ep.yaml": b"x"}, links={"media": "/etc"}), "link"),
        (tar_gz({"ep.yaml": b"x", "./ep.yaml": b"y"}), "appears twice"),
        (b"plain text", "not a tar.gz, tar or zip"),
        (b"", "empty"),
    ],
)
def test_a_hostile_or_broken_bundle_is_refused_and_leaves_nothing(tmp_path: Path, archive: bytes, message: str) -> None:
    uploads = tmp_path / "uploads"

    with pytest.raises(BundleError, match=message):
        unpack_bundle(io.BytesIO(archive), uploads)

    assert list(uploads.iterdir()) == []
    assert not (tmp_path / "up.txt").exists()


def test_a_zip_with_a_path_outside_is_refused(tmp_path: Path) -> None:
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w") as bundle:
        bundle.writestr("ep.yaml", "version: 1\n")
        bundle.writestr("../../up.txt", "x")

    with pytest.raises(BundleError, match="outside the bundle"):
        unpack_bundle(io.BytesIO(archive.getvalue()), tmp_path / "uploads")

    assert list((tmp_path / "uploads").iterdir()) == []


@pytest.mark.parametrize(
    ("limits", "message"),
    [
        (BundleLimits(max_bytes=100), "over 100 bytes"),
        (BundleLimits(max_unpacked_bytes=1000), "unpacks to more than"),
        (BundleLimits(max_members=2), "more than 2 files"),
    ],
)
def test_a_bundle_over_its_limits_is_refused(tmp_path: Path, limits: BundleLimits, message: str) -> None:
    archive = tar_gz({"ep.yaml": b"x" * 600, "media/a.wav": b"y" * 600, "media/b.wav": b"z"})

    with pytest.raises(BundleTooLarge, match=message):
        unpack_bundle(io.BytesIO(archive), tmp_path / "uploads", limits=limits)

    assert list((tmp_path / "uploads").iterdir()) == []


def test_packing_refuses_a_folder_over_the_limits_before_writing(tmp_path: Path) -> None:
    project = make_project(tmp_path / "project").parent
    bundle = io.BytesIO()

    with pytest.raises(BundleTooLarge, match="folder of its own"):
        pack_bundle(project, bundle, limits=BundleLimits(max_members=2))

    assert bundle.getvalue() == b""
