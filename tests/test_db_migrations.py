"""Schema and migrations, on SQLite and PostgreSQL: fresh databases, old databases, newer databases."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
import threading
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

from farm.db import migrate
from farm.db.columns import JSONDocument, UTCDateTime
from farm.db.connect import create_sql_engine, normalise_url
from farm.db.errors import DatabaseMissing, DatabaseUnavailable, SchemaVersionError
from farm.db.lease import heartbeat
from farm.db.products import NewEdit, record_edit
from farm.db.queries import job_detail, job_events
from farm.db.session import Database, database_status, open_database
from farm.db.shots import finish_attempt
from farm.db.states import AttemptState, JobState, ShotState
from farm.db.tables import SQLITE_ONLY_INDEXES, metadata
from farm.errors import UsageError
from farm.settings import REPO_ROOT
from farm.verdicts import Verdict

FIRST = "0001_initial"
T0 = datetime(2026, 1, 2, 3, 4, 5, 678000, tzinfo=UTC)
T1 = datetime(2026, 1, 2, 3, 6, 5, tzinfo=UTC)


def test_fresh_database_is_created_at_the_newest_schema(database: Database) -> None:
    status = migrate.schema_status(database.sql_engine)

    assert status.current == migrate.head_revision()
    assert status.up_to_date
    assert set(sa.inspect(database.sql_engine).get_table_names()) >= {
        "jobs",
        "shots",
        "renders",
        "artifacts",
        "edits",
        "events",
        "alembic_version",
    }


def test_migrations_create_exactly_the_tables_the_models_describe(database: Database) -> None:
    with database.sql_engine.connect() as connection:
        dialect = connection.dialect.name

        def on_this_dialect(item: object, name: str | None, kind: str, reflected: bool, compare_to: object) -> bool:
            return not (kind == "index" and name in SQLITE_ONLY_INDEXES and dialect != "sqlite")

        context = MigrationContext.configure(connection, opts={"include_object": on_this_dialect})
        differences = compare_metadata(context, metadata)

    assert differences == []


def test_schema_has_at_least_two_migrations_and_the_head_constant_names_the_last() -> None:
    assert migrate.known_revisions()[0] == FIRST
    assert len(migrate.known_revisions()) >= 2
    assert migrate.script_directory().get_current_head() == migrate.HEAD_REVISION == migrate.known_revisions()[-1]


def test_database_from_the_first_migration_upgrades_with_its_rows_intact(database_url: str) -> None:
    engine = create_sql_engine(normalise_url(database_url))
    migrate.upgrade(engine, FIRST)
    _write_rows_as_the_first_schema_did(engine)
    engine.dispose()

    with open_database(database_url) as db:
        assert migrate.schema_status(db.sql_engine).up_to_date
        detail = job_detail(db, 1)
        assert (detail.job.project, detail.job.state, detail.job.submitted_by) == (
            "Old Show",
            JobState.RENDERING,
            "ann",
        )
        assert detail.job.submitted_at == T0
        assert detail.job.driver_id is None
        done, running = detail.shots
        assert (done.shot_id, done.state, done.artifact_path, done.worker) == ("s1", ShotState.DONE, "/a/s1.mp4", "w1")
        assert done.duration_seconds == (T1 - T0).total_seconds()
        # 0003 backfilled the done shot's render time from its attempt: 25 frames in T1 - T0.
        assert detail.job.frames_per_second == pytest.approx(25 / (T1 - T0).total_seconds(), rel=1e-4)
        assert (running.shot_id, running.state, running.progress) == ("s2", ShotState.RUNNING, 0.25)
        assert [(event.kind, event.new_state) for event in job_events(db, 1)] == [
            ("job.submitted", "queued"),
            ("job.state", "running"),
        ]
        # What the second migration added works on the upgraded rows.
        heartbeat(db, 1, "driver-7")
        assert record_edit(db, 1, NewEdit("/e.mp4", None, None, Verdict.PASS, {}), by="t") == (1, 1)
        assert finish_attempt(db, 2, outcome=AttemptState.SUCCEEDED, shot_state=ShotState.DONE, by="t")
        assert job_detail(db, 1).job.driver_id == "driver-7"


def _write_rows_as_the_first_schema_did(engine: sa.Engine) -> None:
    """Rows as farm at revision 0001 wrote them (no driver columns, no edits table)."""
    jobs = sa.table(
        "jobs",
        *(sa.column(name) for name in ("id", "project", "episode", "shot_list_path", "shot_list_sha256")),
        *(sa.column(name) for name in ("quality", "priority", "state", "submitted_by")),
        sa.column("options", JSONDocument),
        sa.column("submitted_at", UTCDateTime()),
        sa.column("started_at", UTCDateTime()),
        sa.column("updated_at", UTCDateTime()),
    )
    shots = sa.table(
        "shots",
        *(sa.column(name) for name in ("id", "job_id", "shot_id", "scene_id", "edit_order", "cache_key", "frames")),
        *(sa.column(name) for name in ("state", "cached", "attempts", "artifact_id", "gpu_seconds")),
        sa.column("spec", JSONDocument),
        sa.column("updated_at", UTCDateTime()),
    )
    renders = sa.table(
        "renders",
        *(sa.column(name) for name in ("id", "shot_id", "attempt_no", "worker", "node", "device", "state")),
        *(sa.column(name) for name in ("progress", "gpu_seconds")),
        sa.column("started_at", UTCDateTime()),
        sa.column("finished_at", UTCDateTime()),
    )
    artifacts = sa.table(
        "artifacts",
        *(sa.column(name) for name in ("id", "cache_key", "kind", "path", "bytes", "sha256", "frames", "duration")),
        sa.column("created_at", UTCDateTime()),
    )
    events = sa.table(
        "events",
        *(sa.column(name) for name in ("job_id", "actor", "kind", "old_state", "new_state", "message")),
        sa.column("at", UTCDateTime()),
    )
    with engine.begin() as connection:
        connection.execute(
            jobs.insert(),
            [
                {
                    "id": 1,
                    "project": "Old Show",
                    "episode": "01",
                    "shot_list_path": "/p/ep.yaml",
                    "shot_list_sha256": "0" * 64,
                    "quality": "preview",
                    "priority": 0,
                    "state": "running",
                    "submitted_by": "ann",
                    "options": {"note": "kept"},
                    "submitted_at": T0,
                    "started_at": T0,
                    "updated_at": T0,
                }
            ],
        )
        connection.execute(
            artifacts.insert(),
            [{"id": 1, "cache_key": "k1", "kind": "shot_video", "path": "/a/s1.mp4", "bytes": 10, "sha256": "f" * 64,
              "frames": 25, "duration": 1.0, "created_at": T1}],
        )  # fmt: skip
        connection.execute(
            shots.insert(),
            [
                {"id": 1, "job_id": 1, "shot_id": "s1", "scene_id": "sc1", "edit_order": 0, "cache_key": "k1",
                 "frames": 25, "state": "done", "cached": False, "attempts": 1, "artifact_id": 1, "gpu_seconds": 120.0,
                 "spec": {"shot": "s1"}, "updated_at": T1},
                {"id": 2, "job_id": 1, "shot_id": "s2", "scene_id": "sc1", "edit_order": 1, "cache_key": "k2",
                 "frames": 50, "state": "running", "cached": False, "attempts": 1, "artifact_id": None,
                 "gpu_seconds": 0.0, "spec": {"shot": "s2"}, "updated_at": T1},
            ],
        )  # fmt: skip
        connection.execute(
            renders.insert(),
            [
                {"id": 1, "shot_id": 1, "attempt_no": 1, "worker": "w1", "node": "n1", "device": "cuda:0",
                 "state": "succeeded", "progress": 1.0, "gpu_seconds": 120.0, "started_at": T0, "finished_at": T1},
                {"id": 2, "shot_id": 2, "attempt_no": 1, "worker": "w2", "node": "n2", "device": "cuda:0",
                 "state": "running", "progress": 0.25, "gpu_seconds": 0.0, "started_at": T1, "finished_at": None},
            ],
        )  # fmt: skip
        connection.execute(sa.text("UPDATE shots SET current_render_id = id"))
        connection.execute(
            events.insert(),
            [
                {"job_id": 1, "actor": "ann", "kind": "job.submitted", "old_state": None, "new_state": "queued",
                 "message": "", "at": T0},
                {"job_id": 1, "actor": "d", "kind": "job.state", "old_state": "queued", "new_state": "running",
                 "message": "", "at": T0},
            ],
        )  # fmt: skip
        if engine.dialect.name == "postgresql":
            # Rows inserted with explicit ids leave the sequences behind; farm itself never does this.
            for table in ("jobs", "shots", "renders", "artifacts"):
                connection.execute(sa.text(f"SELECT setval('{table}_id_seq', (SELECT max(id) FROM {table}))"))


def test_downgrade_to_the_first_migration_and_back_keeps_jobs(database: Database, make_job: Callable[..., int]) -> None:
    job_id = make_job(database)

    migrate.downgrade(database.sql_engine, FIRST)
    assert "edits" not in sa.inspect(database.sql_engine).get_table_names()
    migrate.upgrade(database.sql_engine)

    detail = job_detail(database, job_id)
    assert [shot.shot_id for shot in detail.shots] == ["a", "b", "c"]
    assert detail.job.state is JobState.QUEUED


def test_database_upgraded_by_a_newer_farm_is_refused(database_url: str) -> None:
    with open_database(database_url) as db, db.sql_engine.begin() as connection:
        connection.execute(sa.text("UPDATE alembic_version SET version_num = '9999_from_the_future'"))

    with pytest.raises(SchemaVersionError, match=r"9999_from_the_future.*newer farm"):
        open_database(database_url)


def test_outdated_database_is_not_upgraded_behind_the_callers_back(database_url: str) -> None:
    engine = create_sql_engine(normalise_url(database_url))
    migrate.upgrade(engine, FIRST)
    engine.dispose()

    with pytest.raises(SchemaVersionError, match="farm db upgrade"):
        open_database(database_url, read_only=True)
    with open_database(database_url) as db:
        assert migrate.schema_status(db.sql_engine).up_to_date


def test_processes_opening_a_fresh_database_at_once_migrate_it_once(database_url: str) -> None:
    code = "import sys; from farm.db.session import open_database; open_database(sys.argv[1]).dispose()"
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    processes = [
        subprocess.Popen([sys.executable, "-c", code, database_url], env=env, stderr=subprocess.PIPE, text=True)
        for _ in range(3)
    ]
    errors = [process.communicate(timeout=120)[1] for process in processes]

    assert [process.returncode for process in processes] == [0, 0, 0], errors
    with open_database(database_url) as db:
        assert migrate.schema_status(db.sql_engine).up_to_date


def test_threads_opening_a_fresh_database_at_once_all_succeed(database_url: str) -> None:
    errors: list[BaseException] = []

    def open_and_close() -> None:
        try:
            open_database(database_url).dispose()
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=open_and_close) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert errors == []


def test_sqlite_connections_use_wal_busy_timeout_and_foreign_keys(tmp_path: Path) -> None:
    with open_database(f"sqlite:///{tmp_path / 'farm.db'}") as db, db.read() as connection:
        pragmas = {name: connection.exec_driver_sql(f"PRAGMA {name}").scalar() for name in
                   ("journal_mode", "busy_timeout", "foreign_keys", "synchronous")}  # fmt: skip

    assert pragmas == {"journal_mode": "wal", "busy_timeout": 30_000, "foreign_keys": 1, "synchronous": 1}


def test_sqlite_write_takes_the_lock_at_begin_while_readers_go_on(tmp_path: Path) -> None:
    path = tmp_path / "farm.db"
    with open_database(f"sqlite:///{path}") as db:
        other = sqlite3.connect(path, timeout=0, isolation_level=None)
        with db.write():
            # BEGIN IMMEDIATE: the write lock is ours before the first statement, so a second writer waits...
            with pytest.raises(sqlite3.OperationalError, match="locked"):
                other.execute("BEGIN IMMEDIATE")
            # ...while a reader is not blocked (WAL).
            assert other.execute("SELECT count(*) FROM jobs").fetchone() == (0,)
        other.execute("BEGIN IMMEDIATE")
        other.execute("ROLLBACK")
        other.close()


def test_reads_do_not_take_the_sqlite_write_lock(tmp_path: Path) -> None:
    path = tmp_path / "farm.db"
    with open_database(f"sqlite:///{path}") as db, db.read():
        other = sqlite3.connect(path, timeout=0, isolation_level=None)
        other.execute("BEGIN IMMEDIATE")
        other.execute("ROLLBACK")
        other.close()


def test_postgresql_urls_use_psycopg_3() -> None:
    assert normalise_url("postgresql://farm@db:5432/farm").drivername == "postgresql+psycopg"
    assert normalise_url("postgres://farm@db/farm").drivername == "postgresql+psycopg"
    assert normalise_url("sqlite:///x.db").drivername == "sqlite"


@pytest.mark.parametrize("url", ["mysql://farm@db/farm", "not a url"])
def test_unsupported_database_urls_are_usage_errors(url: str) -> None:
    with pytest.raises(UsageError, match="sqlite:///"):
        open_database(url)


def test_unreachable_postgresql_is_a_clear_error_without_the_password() -> None:
    with pytest.raises(
        DatabaseUnavailable, match=r"cannot open database postgresql\+psycopg://farm:\*\*\*@127.0.0.1:1/x"
    ):
        open_database("postgresql://farm:secret@127.0.0.1:1/x")


def test_the_phases_migration_puts_every_job_in_the_phase_its_rows_say(database_url: str) -> None:
    """0004: running jobs are rendering; a done job without an edit is assembling (its edit is still owed);
    a done job with one stays done."""
    engine = create_sql_engine(normalise_url(database_url))
    migrate.upgrade(engine, "0003_shot_render_seconds")
    jobs = sa.table(
        "jobs",
        *(sa.column(name) for name in ("id", "project", "episode", "shot_list_path", "shot_list_sha256")),
        *(sa.column(name) for name in ("quality", "priority", "state", "submitted_by")),
        sa.column("options", JSONDocument),
        sa.column("submitted_at", UTCDateTime()),
        sa.column("updated_at", UTCDateTime()),
        sa.column("finished_at", UTCDateTime()),
    )
    edits = sa.table(
        "edits",
        *(sa.column(name) for name in ("id", "job_id", "version", "video_path", "verdict")),
        sa.column("summary", JSONDocument),
        sa.column("created_at", UTCDateTime()),
    )
    row = {"project": "P", "episode": "1", "shot_list_path": "/s.yaml", "shot_list_sha256": "0" * 64,
           "quality": "preview", "priority": 0, "submitted_by": "ann", "options": {}, "submitted_at": T0,
           "updated_at": T0}  # fmt: skip
    with engine.begin() as connection:
        connection.execute(
            jobs.insert(),
            [
                {**row, "id": 1, "state": "running", "finished_at": None},
                {**row, "id": 2, "state": "done", "finished_at": T1},
                {**row, "id": 3, "state": "done", "finished_at": T1},
                {**row, "id": 4, "state": "failed", "finished_at": T1},
            ],
        )
        connection.execute(
            edits.insert(),
            [{"id": 1, "job_id": 3, "version": 1, "video_path": "/e.mp4", "verdict": "pass", "summary": {},
              "created_at": T1}],
        )  # fmt: skip
    engine.dispose()

    with open_database(database_url) as db:
        states = {job: job_detail(db, job).job.state for job in (1, 2, 3, 4)}
        assert job_detail(db, 2).job.finished_at is None
        assert job_detail(db, 3).latest_edit is not None and job_detail(db, 3).latest_edit.verdict is Verdict.PASS
    assert states == {1: JobState.RENDERING, 2: JobState.ASSEMBLING, 3: JobState.DONE, 4: JobState.FAILED}


def test_a_read_of_a_missing_sqlite_database_creates_nothing_and_says_which_file(tmp_path: Path) -> None:
    path = tmp_path / "typo" / "farm.db"

    with pytest.raises(DatabaseMissing, match=f"no farm database at {path}"):
        open_database(f"sqlite:///{path}", read_only=True)
    with pytest.raises(DatabaseMissing):
        database_status(f"sqlite:///{path}")
    assert not path.parent.exists()


def test_a_read_of_an_empty_database_creates_no_tables(database_url: str) -> None:
    if database_url.startswith("sqlite"):
        Path(normalise_url(database_url).database).parent.mkdir(parents=True, exist_ok=True)
        sqlite3.connect(normalise_url(database_url).database).close()  # an empty file, as an editor's typo makes

    with pytest.raises(DatabaseMissing, match="has no farm tables"):
        open_database(database_url, read_only=True)
    engine = create_sql_engine(normalise_url(database_url))
    try:
        assert sa.inspect(engine).get_table_names() == []
    finally:
        engine.dispose()
