"""The database password never shows on a command line: not on one farm starts, not unwarned on one typed.

A stand-in PostgreSQL server (``PasswordCatcher``) asks each client for its password in clear text and
records it, so these tests see what a real driver process, started the way farm starts it, logs in with,
while they read the same process's command line from /proc.
"""

from __future__ import annotations

import os
import queue
import shlex
import socket
import struct
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

import pytest

from farm.errors import UsageError
from farm.jobs.detach import driver_command, ray_job_entrypoint, ray_job_runtime_env, start_detached_driver
from farm.settings import REPO_ROOT, Settings, has_password, resolve_settings, with_password_from, without_password

SECRET = "s3cret-Pa55"
SSL_REQUEST, GSSENC_REQUEST = 80877103, 80877104
AUTH_CLEARTEXT_PASSWORD = 3


@dataclass(frozen=True)
class Login:
    user: str
    database: str
    password: str


class PasswordCatcher:
    """A PostgreSQL server in name only: it refuses SSL, asks for a clear-text password, records the login,
    then refuses it (once ``release`` is set, so a test can look at the client while it waits)."""

    def __init__(self) -> None:
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.logins: queue.Queue[Login] = queue.Queue()
        self.release = threading.Event()
        threading.Thread(target=self._serve, daemon=True).start()

    @property
    def port(self) -> int:
        return int(self.listener.getsockname()[1])

    def url(self, *, password: str | None = None, user: str = "farm") -> str:
        secret = f":{password}" if password else ""
        return f"postgresql://{user}{secret}@127.0.0.1:{self.port}/farm"

    def next_login(self, timeout: float = 60) -> Login:
        return self.logins.get(timeout=timeout)

    def close(self) -> None:
        self.release.set()
        self.listener.close()

    def _serve(self) -> None:
        while True:
            try:
                connection, _ = self.listener.accept()
            except OSError:
                return
            with connection:
                try:
                    self._log_in(connection)
                except (OSError, ConnectionError):
                    continue

    def _log_in(self, connection: socket.socket) -> None:
        while True:
            length, code = struct.unpack("!ii", _receive(connection, 8))
            if code not in (SSL_REQUEST, GSSENC_REQUEST):
                break
            connection.sendall(b"N")
        fields = _receive(connection, length - 8).split(b"\0")
        startup = dict(zip(fields[0::2], fields[1::2], strict=False))
        connection.sendall(b"R" + struct.pack("!ii", 8, AUTH_CLEARTEXT_PASSWORD))
        kind, length = struct.unpack("!ci", _receive(connection, 5))
        assert kind == b"p"
        password = _receive(connection, length - 4).rstrip(b"\0").decode()
        self.logins.put(Login(startup[b"user"].decode(), startup[b"database"].decode(), password))
        self.release.wait(timeout=120)
        error = b"SFATAL\0VFATAL\0C28P01\0Mpassword authentication failed (test server)\0\0"
        connection.sendall(b"E" + struct.pack("!i", len(error) + 4) + error)


def _receive(connection: socket.socket, size: int) -> bytes:
    data = b""
    while len(data) < size:
        chunk = connection.recv(size - len(data))
        if not chunk:
            raise ConnectionError("the client hung up")
        data += chunk
    return data


@pytest.fixture
def server() -> Iterator[PasswordCatcher]:
    catcher = PasswordCatcher()
    yield catcher
    catcher.close()


def settings_for(url: str, tmp_path: Path) -> Settings:
    return resolve_settings(data_dir=tmp_path / "data", database_url=url, environ={})


def farm_process(*args: str, environ: Mapping[str, str]) -> subprocess.CompletedProcess[str]:
    """``farm ARGS`` in a process of its own, with none of this one's FARM_DATABASE_URL, plus ``environ``."""
    inherited = {key: value for key, value in os.environ.items() if key != "FARM_DATABASE_URL"}
    env = {**inherited, "PYTHONPATH": str(REPO_ROOT), **environ}
    return subprocess.run(
        [sys.executable, "-m", "farm", *args], env=env, capture_output=True, text=True, timeout=120, cwd=REPO_ROOT
    )


def read_proc(pid: int, name: str) -> list[str]:
    return [part.decode() for part in Path(f"/proc/{pid}/{name}").read_bytes().split(b"\0") if part]


def wait_for_exit(pid: int, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if os.waitpid(pid, os.WNOHANG) != (0, 0):
                return
        except ChildProcessError:
            return
        time.sleep(0.1)
    os.kill(pid, 9)
    pytest.fail(f"the driver (pid {pid}) did not exit after the server refused its login")


needs_proc = pytest.mark.skipif(not Path("/proc/self/cmdline").is_file(), reason="reads /proc (Linux)")


# ---- the URL helpers ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("postgresql://farm:s3cret@db:5432/farm", "postgresql://farm@db:5432/farm"),
        ("postgresql+psycopg://farm:p%40ss%3Aword@db/farm?sslmode=require", "postgresql+psycopg://farm@db/farm?sslmode=require"),
        ("postgresql://farm@db/farm?password=s3cret&sslmode=verify-full", "postgresql://farm@db/farm?sslmode=verify-full"),
    ],
)  # fmt: skip
def test_without_password_takes_the_password_out_and_keeps_the_rest(url: str, expected: str) -> None:
    assert has_password(url)

    stripped = without_password(url)

    assert stripped == expected
    assert not has_password(stripped)
    assert "s3cret" not in stripped and "***" not in stripped


@pytest.mark.parametrize(
    "url",
    ["sqlite:////mnt/farm/farm.db", "postgresql://farm@db/farm", "postgresql:///farm?host=/var/run/postgresql"],
)
def test_a_url_without_a_password_is_left_as_written(url: str) -> None:
    assert not has_password(url)
    assert without_password(url) == url


def test_a_string_that_is_not_a_url_is_refused_without_being_repeated() -> None:
    with pytest.raises(UsageError, match="is not a URL") as raised:
        without_password("farm:s3cret at db")

    assert "s3cret" not in str(raised.value)


@pytest.mark.parametrize(
    "flag",
    ["postgresql://farm@db:5432/farm", "postgresql+psycopg://farm@db:5432/farm?sslmode=require"],
)
def test_db_without_a_password_takes_the_one_farm_database_url_has_for_the_same_database(flag: str) -> None:
    environ = {"FARM_DATABASE_URL": f"postgresql://farm:{SECRET}@db:5432/farm"}

    url = resolve_settings(database_url=flag, environ=environ).database_url

    assert url == flag.replace("farm@", f"farm:{SECRET}@")


def test_a_password_given_as_a_query_parameter_is_taken_the_same_way() -> None:
    source = f"postgresql://farm@db/farm?password={SECRET}"

    assert with_password_from("postgresql://farm@db/farm", source) == source


@pytest.mark.parametrize(
    "flag",
    [
        "postgresql://farm@other-host:5432/farm",
        "postgresql://farm@db:5433/farm",
        "postgresql://farm@db:5432/archive",
        "postgresql://admin@db:5432/farm",
        "sqlite:////mnt/farm/farm.db",
    ],
)
def test_the_password_is_never_handed_to_another_server_role_or_database(flag: str) -> None:
    environ = {"FARM_DATABASE_URL": f"postgresql://farm:{SECRET}@db:5432/farm"}

    assert resolve_settings(database_url=flag, environ=environ).database_url == flag


def test_a_password_on_the_db_flag_wins_over_farm_database_url() -> None:
    environ = {"FARM_DATABASE_URL": f"postgresql://farm:{SECRET}@db/farm"}

    url = resolve_settings(database_url="postgresql://farm:typed@db/farm", environ=environ).database_url

    assert url == "postgresql://farm:typed@db/farm"


# ---- the drivers farm starts -------------------------------------------------------------------------------


def test_the_driver_command_names_the_database_without_its_password(tmp_path: Path) -> None:
    settings = settings_for(f"postgresql://farm:{SECRET}@db:5432/farm", tmp_path)

    argv = driver_command(settings, 7, python="python").argv

    assert SECRET not in " ".join(argv)
    assert argv[argv.index("--db") + 1] == "postgresql://farm@db:5432/farm"
    assert argv[:6] == ("python", "-m", "farm", "render", "--resume", "7")


@needs_proc
def test_a_detached_driver_logs_in_with_the_password_that_its_command_line_lacks(
    server: PasswordCatcher, tmp_path: Path
) -> None:
    settings = settings_for(server.url(password=SECRET), tmp_path)
    log = tmp_path / "driver.log"

    pid = start_detached_driver(settings, 1, log)
    login = server.next_login()  # the driver waits here for the server's verdict: look at it meanwhile
    argv, environ = read_proc(pid, "cmdline"), read_proc(pid, "environ")
    server.release.set()
    wait_for_exit(pid)

    assert login == Login(user="farm", database="farm", password=SECRET)
    assert argv[argv.index("--db") + 1] == server.url()
    assert not any(SECRET in arg for arg in argv)
    assert f"FARM_DATABASE_URL={server.url(password=SECRET)}" in environ
    assert "password authentication failed" in log.read_text()
    assert SECRET not in log.read_text()


def test_a_ray_job_entrypoint_holds_no_password_and_its_runtime_env_logs_the_driver_in(
    server: PasswordCatcher, tmp_path: Path
) -> None:
    settings = settings_for(server.url(password=SECRET), tmp_path)

    entrypoint = ray_job_entrypoint(settings, 1)
    runtime_env = ray_job_runtime_env(settings)
    # What Ray's job supervisor does on the head: the entrypoint, run by a shell, in runtime_env's variables.
    head_path = f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"
    run = subprocess.Popen(
        ["sh", "-c", entrypoint],
        env={**os.environ, "PATH": head_path, "PYTHONPATH": str(REPO_ROOT), **runtime_env["env_vars"]},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        login = server.next_login()
    finally:
        server.release.set()
        output, _ = run.communicate(timeout=120)

    assert SECRET not in entrypoint
    assert shlex.split(entrypoint)[-2:] == ["--address", "auto"]
    assert login.password == SECRET
    assert "password authentication failed" in output and SECRET not in output


# ---- the command line a person types -----------------------------------------------------------------------


def test_the_cli_warns_when_db_holds_a_password_and_says_where_it_belongs(server: PasswordCatcher) -> None:
    server.release.set()

    result = farm_process("db", "current", "--db", server.url(password=SECRET), environ={})

    assert result.returncode != 0  # the stand-in server refuses every login
    warning = result.stderr.splitlines()[0]
    assert warning.startswith("farm: warning: the --db URL holds a password")
    assert "FARM_DATABASE_URL" in warning and "~/.pgpass" in warning and "PGPASSFILE" in warning
    assert SECRET not in result.stderr
    assert server.next_login().password == SECRET  # a warning, not a refusal: the command still ran


def test_the_cli_does_not_warn_when_the_password_comes_from_farm_database_url(server: PasswordCatcher) -> None:
    server.release.set()

    result = farm_process(
        "db", "current", "--db", server.url(), environ={"FARM_DATABASE_URL": server.url(password=SECRET)}
    )

    assert "warning" not in result.stderr
    assert "password authentication failed" in result.stderr
    assert server.next_login().password == SECRET
