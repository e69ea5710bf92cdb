"""Nothing half-done stays: what killed renders and assemblies leave is swept when a driver or the manager
starts, and only once no live attempt or assembly can own it (SQLite and PostgreSQL)."""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

from sqlalchemy import update

from farm.db.claims import ClaimRequest
from farm.db.columns import utcnow
from farm.db.jobs import transition_job
from farm.db.lease import claim_driver
from farm.db.queries import latest_edit, shots_of_job
from farm.db.session import Database
from farm.db.shots import start_attempt, start_logged_attempt
from farm.db.states import JobState
from farm.db.tables import Job, Render, RenderClaim
from farm.engine.artifacts import ArtifactStore
from farm.jobs.debris import sweep_debris
from farm.jobs.edit import assemble_job, job_edits_dir
from farm.jobs.lease import DriverLease
from farm.jobs.run import render_job
from farm.settings import Settings
from tests.test_job_edit import rendered_job, settings_for

KEY = "ab" + "c" * 62
HOUR = 3600.0


def aged(path: Path, seconds: float, content: bytes = b"partial") -> Path:
    """``path`` written (folders made), last modified ``seconds`` ago."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if not path.exists():
        path.write_bytes(content)
    then = time.time() - seconds
    os.utime(path, (then, then))
    return path


def aged_folder(folder: Path, seconds: float) -> Path:
    """A folder with a file in it, everything last modified ``seconds`` ago."""
    aged(folder / "edit.mp4", seconds, b"half an edit")
    then = time.time() - seconds
    os.utime(folder, (then, then))
    return folder


def store_temporaries(settings: Settings, seconds: float) -> list[Path]:
    shard = settings.artifacts_dir / KEY[:2]
    return [
        aged(shard / f".{KEY}.0123456789ab.part.mp4", seconds),
        aged(shard / f".{KEY}.0123456789ab.part.wav", seconds),
        aged(shard / f".{KEY}.ba9876543210.npz", seconds),
    ]


def test_partial_renders_nobody_can_own_are_swept_and_published_files_stay(
    database: Database, database_url: str, tmp_path: Path
) -> None:
    settings = settings_for(tmp_path, database_url)
    old = store_temporaries(settings, 2 * HOUR)
    published = aged(settings.artifacts_dir / KEY[:2] / f"{KEY}.mp4", 2 * HOUR, b"a finished render")
    young = aged(settings.artifacts_dir / "de" / f".de{'0' * 62}.0123456789ab.part.mp4", 10)

    swept = sweep_debris(database, settings)

    assert sorted(swept.paths) == sorted(old)
    assert swept.bytes == 3 * len(b"partial")
    assert not any(path.exists() for path in old)
    assert published.exists() and young.exists()


def test_a_partial_render_younger_than_the_oldest_running_attempt_is_kept(
    database: Database, database_url: str, tmp_path: Path, make_job: Callable[..., int]
) -> None:
    settings = settings_for(tmp_path, database_url)
    job = make_job(database)
    transition_job(database, job, JobState.RENDERING, by="driver")
    start_attempt(database, shots_of_job(database, job)[0].pk, worker="w", node="n", device="cpu", by="driver")
    with database.write() as connection:  # an attempt that has been rendering for three hours
        connection.execute(update(Render).values(started_at=utcnow() - timedelta(hours=3)))
    kept = store_temporaries(settings, 2 * HOUR)  # younger than that attempt: it may be writing them
    older = aged(settings.artifacts_dir / "ef" / f".ef{'1' * 62}.0123456789ab.part.mp4", 4 * HOUR)

    swept = sweep_debris(database, settings)

    assert swept.paths == (older,)
    assert all(path.exists() for path in kept)


def test_an_edit_folder_no_row_names_is_swept_unless_a_live_driver_holds_the_job(
    database: Database, database_url: str, tmp_path: Path
) -> None:
    settings, job = rendered_job(database, database_url, tmp_path)
    crashed = job_edits_dir(settings, job) / "v001"
    aged_folder(crashed / ".assemble.0123456789ab", HOUR)  # what a killed assembly leaves
    aged_folder(crashed, HOUR)

    assert claim_driver(database, job, "driver@here-1", stale_after=6.0)
    assert sweep_debris(database, settings).paths == ()  # its driver may be assembling it right now
    with database.write() as connection:  # the driver was killed five minutes ago
        connection.execute(
            update(Job).where(Job.c.id == job).values(driver_heartbeat_at=utcnow() - timedelta(minutes=5))
        )

    swept = sweep_debris(database, settings)

    assert swept.paths == (crashed,)
    assert not crashed.exists()


def test_after_a_crashed_assembly_the_next_edit_is_still_v001_and_complete(
    database: Database, database_url: str, tmp_path: Path
) -> None:
    settings, job = rendered_job(database, database_url, tmp_path)
    crashed = job_edits_dir(settings, job) / "v001"
    aged(crashed / ".assemble.0123456789ab" / "edit.mp4", 0, b"half an edit")
    aged(job_edits_dir(settings, job) / "v007" / "edit.mp4", 0, b"not an edit either")

    edit = assemble_job(database, settings, job, by="editor")

    assert edit.version == 1
    recorded = latest_edit(database, job)
    assert recorded is not None and Path(recorded.video_path) == crashed / "edit.mp4"
    assert not any(entry.name.startswith(".assemble.") for entry in crashed.iterdir())
    assert (crashed / "edit.mp4").stat().st_size > 1000


def test_a_recorded_edit_keeps_its_folder_and_loses_only_hidden_leftovers(
    database: Database, database_url: str, tmp_path: Path
) -> None:
    settings, job = rendered_job(database, database_url, tmp_path)
    assemble_job(database, settings, job, by="editor")
    folder = job_edits_dir(settings, job) / "v001"
    leftover = aged_folder(folder / ".assemble.0123456789ab", HOUR)
    files_before = sorted(entry.name for entry in folder.iterdir() if entry.name != leftover.name)

    swept = sweep_debris(database, settings)

    assert swept.paths == (leftover,)
    assert sorted(entry.name for entry in folder.iterdir()) == files_before


def test_a_driver_sweeps_what_a_dead_one_left_as_it_starts(
    database: Database, database_url: str, tmp_path: Path
) -> None:
    settings, job = rendered_job(database, database_url, tmp_path)
    partials = store_temporaries(settings, 2 * HOUR)
    crashed = job_edits_dir(settings, job) / "v001"
    aged_folder(crashed / ".assemble.0123456789ab", HOUR)
    aged_folder(crashed, HOUR)
    said: list[str] = []

    rendered = render_job(database, settings, job, observer=lambda event: said.append(event.message or ""))

    assert rendered.edit is not None and rendered.edit.version == 1
    assert not any(path.exists() for path in partials)
    assert not any(entry.name.startswith(".") for entry in crashed.iterdir())  # its own job's: taken over
    assert any(message.startswith("removed 3 leftover file(s) of dead processes") for message in said)


def test_a_lost_renders_temporaries_go_and_only_those_of_its_key(tmp_path: Path) -> None:
    store = ArtifactStore(tmp_path / "artifacts")
    shard = store.root / KEY[:2]
    lost = [
        aged(shard / f".{KEY}.0123456789ab.part.mp4", 0),
        aged(shard / f".{KEY}.0123456789ab.part.wav", 0),
    ]
    published = aged(shard / f"{KEY}.mp4", 0, b"a finished render")
    other = aged(shard / f".ab{'d' * 62}.0123456789ab.part.mp4", 0)  # another key's render, same shard

    assert sorted(store.remove_temporaries(KEY)) == sorted(lost)
    assert not any(path.exists() for path in lost)
    assert published.exists() and other.exists()
    assert store.remove_temporaries("ff" + "0" * 62) == ()  # a shard that does not exist


def test_a_dead_drivers_partial_renders_go_when_its_attempts_are_recovered_unless_their_key_went_elsewhere(
    database: Database, database_url: str, tmp_path: Path, make_job: Callable[..., int]
) -> None:
    """Its renders' temporaries are minutes old, too young for the start sweep, but the driver that takes
    the job over removes them as it recovers the attempts: those whose key claim the dead attempt still
    holds. A key whose claim lapsed and went to another job's attempt keeps its files (they may be that
    attempt's)."""
    settings = settings_for(tmp_path, database_url)
    job, other = make_job(database), make_job(database)
    mine, lost = "ab" + "1" * 62, "cd" + "2" * 62
    assert claim_driver(database, job, "driver@dead-1", stale_after=6.0)
    pks = {row.shot_id: row.pk for row in shots_of_job(database, job)}
    for shot, key in (("a", mine), ("b", lost)):
        start_logged_attempt(
            database, pks[shot], worker="w", node="n", device="cpu", by="driver@dead-1",
            key_claim=ClaimRequest(key, "driver@dead-1", 6.0),
        )  # fmt: skip
    with database.write() as connection:  # the driver died a minute ago; the second key's claim lapsed
        connection.execute(
            update(Job).where(Job.c.id == job).values(driver_heartbeat_at=utcnow() - timedelta(minutes=1))
        )
        connection.execute(
            update(RenderClaim)
            .where(RenderClaim.c.cache_key == lost)
            .values(expires_at=utcnow() - timedelta(seconds=1))
        )
    other_pk = next(row.pk for row in shots_of_job(database, other) if row.shot_id == "b")
    start_logged_attempt(
        database, other_pk, worker="w", node="n", device="cpu", by="driver@live-2",
        key_claim=ClaimRequest(lost, "driver@live-2", 600.0),
    )  # fmt: skip
    left = [aged(settings.artifacts_dir / mine[:2] / f".{mine}.0123456789ab{suffix}", 60) for suffix in PARTS]
    others = [aged(settings.artifacts_dir / lost[:2] / f".{lost}.0123456789ab{suffix}", 60) for suffix in PARTS]

    with DriverLease(
        database, job, heartbeat_seconds=0.5, stale_after_seconds=1.5, artifacts_dir=settings.artifacts_dir
    ):
        pass  # taking the job over is what recovers its attempts

    assert not any(path.exists() for path in left)
    assert all(path.exists() for path in others), "another job's attempt holds that key"
    states = {row.shot_id: row.state for row in shots_of_job(database, job)}
    assert states["a"] == states["b"] == "queued", states


PARTS = (".part.mp4", ".part.wav")
