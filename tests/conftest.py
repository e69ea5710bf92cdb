"""Shared fixtures: real databases (a SQLite file, a PostgreSQL database) and a real planned shot list.

Database tests take the ``database`` (or ``database_url``) fixture and run twice: on a SQLite file in
tmp_path and on PostgreSQL. ``FARM_TEST_POSTGRES_URL`` names an *admin* URL of a PostgreSQL server
(default postgresql://postgres@127.0.0.1:5432/postgres); the session creates a database of its own on it,
``farm_test_<random>``, gives every test an empty schema there, and drops the database at the end.
``FARM_TEST_POSTGRES_URL=none`` leaves out the PostgreSQL half; an unreachable server fails loudly.
"""

from __future__ import annotations

import os

# Other suites start Ray; these must be set before anything imports it.
os.environ["RAY_AUTH_MODE"] = "disabled"
os.environ["RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"] = "0"

import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import URL
from sqlalchemy.exc import DBAPIError

from farm.catalog import ModelCatalog
from farm.db.connect import display_url, normalise_url
from farm.db.jobs import submit_job
from farm.db.session import Database, open_database
from farm.jobs.submit import job_records
from farm.plan import Plan, plan_shot_list
from farm.settings import REPO_ROOT
from farm.shotlist.load import load_shot_list
from tests.shotlists import make_project

POSTGRES_ENV = "FARM_TEST_POSTGRES_URL"
DEFAULT_POSTGRES_ADMIN_URL = "postgresql://postgres@127.0.0.1:5432/postgres"
BACKENDS = ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)]


def postgres_admin_url() -> URL | None:
    """The admin URL of the test server, or None when FARM_TEST_POSTGRES_URL=none."""
    value = os.environ.get(POSTGRES_ENV, DEFAULT_POSTGRES_ADMIN_URL).strip()
    return None if value.lower() == "none" else normalise_url(value)


def url_string(url: URL) -> str:
    return url.render_as_string(hide_password=False)


@pytest.fixture(scope="session")
def postgres_server_url() -> Iterator[URL]:
    """A database of this test session's own on the test server, dropped when the session ends."""
    admin = postgres_admin_url()
    if admin is None:
        pytest.skip(f"{POSTGRES_ENV}=none: PostgreSQL tests left out")
    name = f"farm_test_{uuid.uuid4().hex[:12]}"
    engine = create_engine(admin, isolation_level="AUTOCOMMIT")
    reason = None
    try:
        with engine.connect() as connection:
            connection.execute(text(f'CREATE DATABASE "{name}"'))
    except DBAPIError as exc:
        reason = str(exc.orig).strip().splitlines()[0] if exc.orig else str(exc)
    if reason is not None:
        engine.dispose()
        pytest.fail(
            f"PostgreSQL test server {display_url(admin)} is not usable: {reason}. Start it, point {POSTGRES_ENV} "
            f"at an admin URL of another server, or set {POSTGRES_ENV}=none to skip the PostgreSQL tests",
            pytrace=False,
        )
    try:
        yield admin.set(database=name)
    finally:
        with engine.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        engine.dispose()


def reset_postgres_schema(url: URL) -> None:
    """Drop every table, type and sequence farm made: the next open starts from an empty database."""
    engine = create_engine(url, isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as connection:
            connection.execute(text("DROP SCHEMA public CASCADE"))
            connection.execute(text("CREATE SCHEMA public"))
    finally:
        engine.dispose()


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    return request.param


@pytest.fixture
def database_url(backend: str, tmp_path: Path, request: pytest.FixtureRequest) -> str:
    """The URL of an empty database on ``backend`` (nothing created yet)."""
    if backend == "sqlite":
        return f"sqlite:///{tmp_path / 'data' / 'farm.db'}"
    url: URL = request.getfixturevalue("postgres_server_url")
    reset_postgres_schema(url)
    return url_string(url)


@pytest.fixture
def database(database_url: str) -> Iterator[Database]:
    """An open database at this farm's schema."""
    db = open_database(database_url)
    try:
        yield db
    finally:
        db.dispose()


@pytest.fixture
def postgres_database(postgres_server_url: URL) -> Iterator[Database]:
    """An open PostgreSQL database at this farm's schema, for tests only PostgreSQL can run."""
    reset_postgres_schema(postgres_server_url)
    db = open_database(url_string(postgres_server_url))
    try:
        yield db
    finally:
        db.dispose()


@pytest.fixture(scope="session")
def catalog() -> ModelCatalog:
    return ModelCatalog(REPO_ROOT / "models")


@pytest.fixture(scope="session")
def plan(tmp_path_factory: pytest.TempPathFactory, catalog: ModelCatalog) -> Plan:
    """The test template (3 shots: a, b, c continues a) planned for real: media hashed, audio cut."""
    shot_list = load_shot_list(make_project(tmp_path_factory.mktemp("project")), catalog=catalog)
    return plan_shot_list(shot_list, catalog)


@pytest.fixture
def make_job(plan: Plan) -> Callable[..., int]:
    """Submit the template plan to a database; returns the job id."""

    def submit(db: Database, *, submitted_by: str = "alice", priority: int = 0) -> int:
        job, shots = job_records(plan, submitted_by=submitted_by, priority=priority, quality="preview")
        return submit_job(db, job, shots)

    return submit


@pytest.fixture(scope="module", autouse=True)
def no_ray_outlives_its_module() -> Iterator[None]:
    """A module that leaves this process connected to Ray (a local Ray started by a render in process) would
    make the next module's ``ray.init(address=...)`` fail, and its agents hold fixed ports a later test's
    head needs; so after each module, whatever Ray it left is stopped."""
    yield
    import sys

    ray = sys.modules.get("ray")  # never import Ray for a module that did not
    if ray is not None and ray.is_initialized():
        ray.shutdown()
