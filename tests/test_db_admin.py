"""What an admin sets and what it leaves in the database: API tokens (only their digest is stored), shows
(share, quota, budget, with their GPU hours used), a job's priority, and idempotent submits."""

from __future__ import annotations

import importlib.util
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from sqlalchemy import MetaData, select

from farm.db.errors import IdempotencyConflict, TokenNameTaken, UnknownShow, UnknownToken
from farm.db.kinds import EventKind, Role
from farm.db.queries import shots_of_job
from farm.db.records import Identity
from farm.db.session import Database
from farm.db.shots import finish_attempt, start_attempt
from farm.db.states import AttemptState, ShotState
from farm.db.tables import Event
from farm.db.tokens import create_token, list_tokens, revoke_token, token_digest, verify_token
from farm.errors import InvalidValue, UsageError
from farm.jobs import Farm
from farm.settings import REPO_ROOT
from tests.db_records import make_farm
from tests.shotlists import make_project


def every_stored_value(db: Database) -> str:
    """Every value in every table of the database, as text."""
    tables = MetaData()
    tables.reflect(db.sql_engine)
    with db.read() as connection:
        return "\n".join(str(row) for table in tables.tables.values() for row in connection.execute(select(table)))


def test_a_token_is_shown_once_and_stored_only_as_its_digest(database: Database) -> None:
    token = create_token(database, "alice", Role.EDITOR)

    stored = every_stored_value(database)
    assert len(token) >= 40
    assert token not in stored and token_digest(token) in stored
    assert verify_token(database, token) == Identity("alice", Role.EDITOR)
    assert verify_token(database, token[:-1] + ("A" if token[-1] != "A" else "B")) is None
    assert verify_token(database, "") is None


def test_a_revoked_token_stops_working_and_frees_its_name(database: Database) -> None:
    first = create_token(database, "alice", "editor")
    with pytest.raises(TokenNameTaken, match="farm token revoke alice"):
        create_token(database, "alice", "admin")

    assert revoke_token(database, "alice") == 1
    second = create_token(database, "alice", "admin")

    assert verify_token(database, first) is None
    assert verify_token(database, second) == Identity("alice", Role.ADMIN)
    assert [(token.name, token.role, token.live) for token in list_tokens(database)] == [
        ("alice", Role.ADMIN, True),
        ("alice", Role.EDITOR, False),
    ]
    with pytest.raises(UnknownToken, match="farm token list"):
        revoke_token(database, "nobody")


def test_a_token_needs_a_known_role_and_a_one_word_name(database: Database) -> None:
    with pytest.raises(InvalidValue, match="editor, producer, admin") as role:
        create_token(database, "alice", "director")
    with pytest.raises(InvalidValue, match="one word") as name:
        create_token(database, "alice smith", "editor")

    assert (role.value.field, name.value.field) == ("role", "name")
    assert list_tokens(database) == ()


def test_the_roles_are_the_ones_the_database_allows() -> None:
    path = REPO_ROOT / "farm" / "db" / "migrations" / "versions" / "0005_manager_shows_api.py"
    spec = importlib.util.spec_from_file_location("migration_0005", path)
    assert spec is not None and spec.loader is not None
    migration = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(migration)

    assert tuple(role.value for role in Role) == migration.ROLES


@pytest.fixture
def farm(database_url: str, tmp_path: Path) -> Iterator[Farm]:
    with make_farm(database_url, tmp_path / "data") as farm:
        yield farm


def test_a_show_is_listed_with_its_jobs_gpu_hours_before_anyone_sets_it(
    farm: Farm, make_job: Callable[..., int]
) -> None:
    db = farm.database(write=True)
    job_id = make_job(db)
    shot = shots_of_job(db, job_id)[0]
    render = start_attempt(db, shot.pk, worker="w", node="n", device="cuda:0", by="driver")
    finish_attempt(db, render, outcome=AttemptState.FAILED, shot_state=ShotState.QUEUED, by="driver", gpu_seconds=5400)

    (show,) = farm.shows()

    assert (show.name, show.share, show.gpu_quota, show.configured, show.jobs) == ("Test Show", 1.0, None, False, 1)
    assert show.gpu_hours_used == pytest.approx(1.5)
    with pytest.raises(UnknownShow, match="farm show"):
        farm.show("Nonesuch")


def test_setting_a_show_changes_only_what_is_given_and_logs_it(farm: Farm, make_job: Callable[..., int]) -> None:
    make_job(farm.database(write=True))

    farm.set_show("Test Show", share=2, gpu_quota=4, by="root")
    show = farm.set_show("Test Show", gpu_hour_budget=100.0, gpu_quota=None, by="root")

    assert (show.share, show.gpu_quota, show.gpu_hour_budget, show.gpu_hours_left) == (2.0, None, 100.0, 100.0)
    assert show.configured and show.jobs == 1
    with farm.database(write=False).read() as connection:
        changes = connection.execute(
            select(Event.c.changed_by, Event.c.message, Event.c.data).where(Event.c.kind == EventKind.SHOW_CHANGED)
        ).all()
    assert [(by, message) for by, message, _ in changes] == [
        ("root", "show Test Show: share 1 -> 2, gpu_quota none -> 4"),
        ("root", "show Test Show: gpu_quota 4 -> none, gpu_hour_budget none -> 100"),
    ]
    assert changes[1].data["after"] == {"share": 2.0, "gpu_quota": None, "gpu_hour_budget": 100.0}


@pytest.mark.parametrize(
    ("change", "field"),
    [({"share": 0}, "share"), ({"gpu_quota": -1}, "gpu_quota"), ({"gpu_hour_budget": float("nan")}, "gpu_hour_budget")],
)
def test_a_show_setting_out_of_range_is_refused_naming_it(farm: Farm, change: dict[str, float], field: str) -> None:
    with pytest.raises(InvalidValue) as refused:
        farm.set_show("Test Show", **change)

    assert refused.value.field == field
    assert farm.shows() == ()


def test_a_show_change_needs_something_to_change(farm: Farm) -> None:
    with pytest.raises(UsageError, match="nothing to change"):
        farm.set_show("Test Show")


def test_a_new_priority_is_recorded_with_its_event(farm: Farm, make_job: Callable[..., int]) -> None:
    job_id = make_job(farm.database(write=True), priority=1)

    assert farm.set_priority(job_id, 8, by="alice") == 1
    assert farm.set_priority(job_id, 8, by="alice") == 8  # unchanged: no second event

    assert farm.status(job_id).job.priority == 8
    changes = [event for event in farm.events(job_id) if event.kind is EventKind.JOB_PRIORITY]
    assert [(event.changed_by, event.message, event.data) for event in changes] == [
        ("alice", "priority 1 -> 8", {"before": 1, "after": 8})
    ]


def test_an_idempotency_key_makes_one_job_even_when_two_submits_race(farm: Farm, tmp_path: Path) -> None:
    path = make_project(tmp_path / "project")
    results: list[int] = []
    errors: list[BaseException] = []
    start = threading.Barrier(2)

    def submit() -> None:
        start.wait()
        try:
            results.append(farm.submit(path, idempotency_key="take-1", submitted_by="alice").job_id)
        except BaseException as exc:
            errors.append(exc)

    racers = [threading.Thread(target=submit) for _ in range(2)]
    for racer in racers:
        racer.start()
    for racer in racers:
        racer.join(120)

    assert errors == [] and len(results) == 2
    assert results[0] == results[1] and len(farm.jobs()) == 1
    with pytest.raises(IdempotencyConflict, match="another request"):
        farm.submit(path, quality="final", idempotency_key="take-1", submitted_by="alice")
    assert len(farm.jobs()) == 1
