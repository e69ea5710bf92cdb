"""Paths in the database: stored relative to the data directory, read back absolute against the data
directory of whoever reads; migration 0009 rewrites the absolute paths older farms stored. Both backends."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import pytest
import sqlalchemy as sa

from farm import files
from farm.db import migrate
from farm.db.attempts import shot_attempts
from farm.db.kinds import ArtifactKind
from farm.db.products import ArtifactRecord, NewEdit, record_artifact, record_edit
from farm.db.queries import find_artifact, latest_edit, shots_of_job
from farm.db.session import Database, open_database
from farm.db.shots import start_logged_attempt
from farm.verdicts import Verdict

KEY = "3f" + "a" * 62


def raw(db: Database, query: str) -> list[str]:
    with db.sql_engine.connect() as connection:
        return list(connection.execute(sa.text(query)).scalars())


def test_paths_under_the_data_dir_are_stored_relative_and_read_back_under_the_readers_data_dir(
    database_url: str, tmp_path: Path
) -> None:
    old, new = tmp_path / "old", tmp_path / "new"
    video = old / "artifacts" / "3f" / f"{KEY}.mp4"
    outside = tmp_path / "elsewhere" / "frames.npz"
    with open_database(database_url, data_dir=old) as db:
        record_artifact(db, ArtifactRecord(KEY, ArtifactKind.SHOT_VIDEO, str(video), 1, "0" * 64))
        record_artifact(db, ArtifactRecord(KEY, ArtifactKind.LAST_FRAMES, str(outside), 1, "0" * 64))
        assert sorted(raw(db, "SELECT path FROM artifacts")) == sorted([f"artifacts/3f/{KEY}.mp4", str(outside)])
        assert find_artifact(db, KEY, ArtifactKind.SHOT_VIDEO).path == str(video)

    with open_database(database_url, data_dir=new) as moved:
        assert find_artifact(moved, KEY, ArtifactKind.SHOT_VIDEO).path == str(new / "artifacts" / "3f" / f"{KEY}.mp4")
        assert find_artifact(moved, KEY, ArtifactKind.LAST_FRAMES).path == str(outside)


def test_migration_0009_makes_the_stored_absolute_paths_relative_whichever_folder_they_were_in(
    database: Database, make_job: Callable[..., int], tmp_path: Path
) -> None:
    old = tmp_path / "was" / "here"  # where an older farm had its data dir; it has moved since
    job = make_job(database)
    record_artifact(database, ArtifactRecord(KEY, ArtifactKind.SHOT_VIDEO, f"{old}/artifacts/3f/{KEY}.mp4", 1, "0"))
    record_artifact(database, ArtifactRecord(KEY, ArtifactKind.LAST_FRAMES, "/somewhere/else.npz", 1, "0"))
    edit_dir = old / "edits" / f"job-{job}" / "v001"
    record_edit(
        database,
        job,
        NewEdit(str(edit_dir / "edit.mp4"), str(edit_dir / "edit.otio"), None, Verdict.PASS, {}),
        by="t",
    )
    pk = shots_of_job(database, job)[0].pk
    logs = f"{old}/logs/attempts/job-{job}"
    start_logged_attempt(database, pk, worker="w", node="n", device="cpu", by="t", log_dir=logs)
    migrate.downgrade(database.sql_engine, "0008_notifications")  # no data dir: the paths stay as they are

    migrate.upgrade(database.sql_engine)

    assert sorted(raw(database, "SELECT path FROM artifacts")) == ["/somewhere/else.npz", f"artifacts/3f/{KEY}.mp4"]
    assert raw(database, "SELECT video_path FROM edits") == [f"edits/job-{job}/v001/edit.mp4"]
    assert raw(database, "SELECT otio_path FROM edits") == [f"edits/job-{job}/v001/edit.otio"]
    assert raw(database, "SELECT log_path FROM renders")[0].startswith(f"logs/attempts/job-{job}/")
    here = tmp_path / "now"
    with open_database(str(database.url.render_as_string(hide_password=False)), data_dir=here) as db:
        assert latest_edit(db, job).video_path == str(here / "edits" / f"job-{job}" / "v001" / "edit.mp4")
        assert shot_attempts(db, job)[0].log_path.startswith(str(here / "logs" / "attempts"))

    migrate.downgrade(database.sql_engine, "0008_notifications", data_dir=here)

    assert raw(database, "SELECT video_path FROM edits") == [str(here / "edits" / f"job-{job}" / "v001" / "edit.mp4")]
    migrate.upgrade(database.sql_engine)


@pytest.mark.parametrize(("umask", "file_mode", "dir_mode"), [(0o022, 0o644, 0o755), (0o077, 0o600, 0o700)])
def test_atomic_writes_and_staging_folders_take_their_modes_from_the_umask(
    tmp_path: Path, umask: int, file_mode: int, dir_mode: int
) -> None:
    previous = os.umask(umask)
    try:
        files.write_text(tmp_path / "report.json", "{}")
        files.write_bytes(tmp_path / "frames.npz", b"x")
        staging = files.temporary_dir(tmp_path, prefix=".report_files.")
        private = tmp_path / "token"
        files.write_text(private, "secret", private=True)
    finally:
        os.umask(previous)

    assert (tmp_path / "report.json").stat().st_mode & 0o777 == file_mode
    assert (tmp_path / "frames.npz").stat().st_mode & 0o777 == file_mode
    assert staging.stat().st_mode & 0o777 == dir_mode
    assert private.stat().st_mode & 0o777 == 0o600


def test_a_write_that_fails_leaves_the_old_file_and_no_temporary(tmp_path: Path) -> None:
    target = tmp_path / "edit.otio"
    files.write_text(target, "old")

    with pytest.raises(RuntimeError), files.atomic_file(target, text=True) as handle:
        handle.write("half of the new")
        raise RuntimeError("the disk filled up")

    assert target.read_text() == "old"
    assert sorted(path.name for path in tmp_path.iterdir()) == ["edit.otio"]
