"""``farm gc``: renders nothing needs any more are removed, rows and files; what a done job's latest edit
was made from and what a queued job needs stay (SQLite and PostgreSQL)."""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import update

from farm.db.columns import utcnow
from farm.db.jobs import cancel_job, submit_job
from farm.db.kinds import ArtifactKind
from farm.db.products import ArtifactRecord, record_artifact
from farm.db.queries import find_artifact
from farm.db.session import Database, open_database
from farm.db.tables import Artifact
from farm.jobs.gc import collect_garbage
from farm.jobs.submit import job_records
from farm.plan import Plan
from tests.db_records import done_job


@dataclasses.dataclass(frozen=True)
class Store:
    db: Database
    data_dir: Path

    def artifact(self, cache_key: str, size: int) -> Path:
        """A stored video of ``size`` bytes for ``cache_key``, file and row, recorded a year ago."""
        path = self.data_dir / "artifacts" / cache_key[:2] / f"{cache_key}.mp4"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"v" * size)
        record_artifact(self.db, ArtifactRecord(cache_key, ArtifactKind.SHOT_VIDEO, str(path), size, "0" * 64))
        with self.db.write() as connection:
            a_year_ago = utcnow() - timedelta(days=365)
            connection.execute(update(Artifact).where(Artifact.c.cache_key == cache_key).values(created_at=a_year_ago))
        return path

    def job_with_keys(self, plan: Plan, keys: list[str]) -> int:
        """A queued job of ``plan`` whose shots have ``keys`` as their cache keys."""
        job, shots = job_records(plan, submitted_by="alice", quality="preview")
        rekeyed = [dataclasses.replace(shot, cache_key=key) for shot, key in zip(shots, keys, strict=True)]
        return submit_job(self.db, job, rekeyed)


@pytest.fixture
def store(database_url: str, tmp_path: Path) -> Iterator[Store]:
    data_dir = tmp_path / "data"
    data_dir.mkdir(exist_ok=True)
    db = open_database(database_url, data_dir=data_dir)
    try:
        yield Store(db, data_dir)
    finally:
        db.dispose()


def test_gc_removes_what_no_edit_or_live_job_needs_and_keeps_the_rest(store: Store, plan: Plan) -> None:
    edited = done_job(store.db, plan)  # the done job's edit was made from the plan's own keys
    kept_for_edit = [store.artifact(task.cache_key, 100) for task in plan.tasks]
    queued = store.job_with_keys(plan, ["1" * 64, "2" * 64, "3" * 64])
    kept_for_queue = store.artifact("1" * 64, 200)
    cancelled = store.job_with_keys(plan, ["4" * 64, "5" * 64, "6" * 64])
    cancel_job(store.db, cancelled, by="alice")
    of_cancelled = store.artifact("4" * 64, 300)
    superseded = store.artifact("9" * 64, 400)  # a key a retake replaced: no shot has it any more

    summary = collect_garbage(store.db, older_than_seconds=30 * 86_400)

    assert (summary.artifacts, summary.bytes) == (2, 700)
    assert set(summary.cache_keys) == {"4" * 64, "9" * 64}
    assert not of_cancelled.exists() and not superseded.exists()
    assert find_artifact(store.db, "4" * 64, ArtifactKind.SHOT_VIDEO) is None
    assert find_artifact(store.db, "9" * 64, ArtifactKind.SHOT_VIDEO) is None
    assert all(path.exists() for path in [*kept_for_edit, kept_for_queue])
    assert find_artifact(store.db, "1" * 64, ArtifactKind.SHOT_VIDEO) is not None
    assert edited and queued


def test_gc_dry_run_counts_what_it_would_free_and_removes_nothing(store: Store) -> None:
    paths = [store.artifact("a" * 64, 1000), store.artifact("b" * 64, 24)]

    summary = collect_garbage(store.db, dry_run=True)

    assert (summary.dry_run, summary.artifacts, summary.bytes) == (True, 2, 1024)
    assert all(path.exists() for path in paths)
    assert find_artifact(store.db, "a" * 64, ArtifactKind.SHOT_VIDEO) is not None


def test_gc_keeps_artifacts_younger_than_older_than(store: Store) -> None:
    young = store.artifact("c" * 64, 10)
    with store.db.write() as connection:
        connection.execute(update(Artifact).values(created_at=utcnow() - timedelta(days=2)))

    assert collect_garbage(store.db, older_than_seconds=7 * 86_400).artifacts == 0
    assert young.exists()
    assert collect_garbage(store.db, older_than_seconds=86_400).artifacts == 1
    assert not young.exists()


def farm_gc(database_url: str, data_dir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "farm", "gc", "--data-dir", str(data_dir), "--db", database_url, *args]
    return subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)


def test_farm_gc_prints_a_summary_and_json(store: Store, database_url: str) -> None:
    path = store.artifact("e" * 64, 2_500_000)

    dry = farm_gc(database_url, store.data_dir, "--dry-run")
    assert dry.returncode == 0, dry.stderr
    assert "would remove 1 artifact(s) older than 30d; would free 2.5 MB" in dry.stdout
    assert path.exists()

    done = farm_gc(database_url, store.data_dir, "--older-than", "12h", "--json")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) | {"cache_keys": None} == {
        "dry_run": False,
        "older_than_seconds": 43_200.0,
        "artifacts": 1,
        "bytes": 2_500_000,
        "cache_keys": None,
    }
    assert not path.exists()


def test_farm_gc_refuses_an_age_it_cannot_read(store: Store, database_url: str) -> None:
    refused = farm_gc(database_url, store.data_dir, "--older-than", "soon")

    assert refused.returncode == 2
    assert "'soon' is not an age such as 30d" in refused.stderr
