"""Configuration in one place: command-line flags, then ``FARM_*`` environment variables, then the config
file (``farm.toml``, ``farm.config``), then defaults.

Nothing else in farm reads the environment or the config file; layers receive a Settings object.

The database password is the one secret here. A command line is readable by every user of the machine
(``ps``) and lands in shell history, and a Ray job's entrypoint is shown by the dashboard, so farm never
puts a password there: a process farm starts gets the full URL in its environment (FARM_DATABASE_URL) and
a command line that names the database without the password. A ``--db`` URL without a password that names
the same database as FARM_DATABASE_URL takes FARM_DATABASE_URL's password, so that such a command line
still connects.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING

from farm import defaults
from farm.config import DEFAULT_RECORD_START, ConfigError, FarmConfig, config_in, load_config, named_config
from farm.errors import Finding, UsageError

if TYPE_CHECKING:
    from sqlalchemy.engine import URL

REPO_ROOT = Path(__file__).resolve().parents[1]
"""The folder above the package: the checkout, in a development install (tests and benches read shots/ and
docs/ there). Nothing in farm reads it: an installed farm has no checkout, and finds what it ships (the
shot-list schema, the model manifests) as package data."""

SHIPPED_MODELS_DIR = Path(str(resources.files("farm") / "model_manifests"))
"""The model manifests that ship in the package (the checkout's models/ links here): the default models dir."""

DATABASE_URL_VARIABLE = "FARM_DATABASE_URL"


@dataclass(frozen=True)
class Settings:
    data_dir: Path
    """Artifacts, edits, logs and the default SQLite database live here."""
    database_url: str
    models_dir: Path
    """Directory of model manifests (``<name>.yaml``)."""
    weights_dir: Path | None = None
    """Where model weights live; ``${FARM_WEIGHTS_DIR}`` in a manifest means this folder."""
    ray_address: str | None = None
    """None starts a local Ray instance; ``auto`` or ``host:port`` joins a cluster."""
    max_shot_seconds: float = defaults.MAX_SHOT_SECONDS
    database_retry_seconds: float = defaults.DATABASE_RETRY_SECONDS
    """How long a database outage is ridden out, retrying, before the work stops resumable (``farm.db.retry``)."""
    user: str = "unknown"
    record_start: str = DEFAULT_RECORD_START
    """The record timecode an edit's first frame gets in its editorial files (``[editorial] record_start``)."""
    config: FarmConfig = field(default_factory=FarmConfig)
    """The config file's shows, people and notification targets (empty without a file)."""

    @property
    def artifacts_dir(self) -> Path:
        return self.data_dir / "artifacts"

    @property
    def edits_dir(self) -> Path:
        return self.data_dir / "edits"

    @property
    def inputs_dir(self) -> Path:
        """The copies of jobs' portraits and dialogue taken at submit (``farm.media.snapshots``)."""
        return self.data_dir / "inputs"

    @property
    def logs_dir(self) -> Path:
        return self.data_dir / "logs"

    @property
    def weights_digest_memo(self) -> Path:
        """Where the per-file digests of model weights are memoised (hashing gigabytes per plan is slow)."""
        return self.data_dir / "cache" / "weights-digests.json"

    @property
    def no_default_database(self) -> bool:
        """The database is the data dir's own SQLite file (no --db, no FARM_DATABASE_URL) and there is no
        such file yet: a read then knows nothing is recorded without importing SQLAlchemy to learn it."""
        default = self.data_dir / "farm.db"
        return self.database_url == sqlite_url(default) and not default.is_file()

    @property
    def face_memo(self) -> Path:
        """Where portraits' detected faces are memoised by sha256 (planning frames every shot from them)."""
        return self.data_dir / "cache" / "portrait-faces.json"


def default_data_dir(environ: Mapping[str, str]) -> Path:
    xdg = environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(xdg) / "farm"


def sqlite_url(path: Path) -> str:
    return f"sqlite:///{path}"


def resolve_settings(
    *,
    data_dir: Path | str | None = None,
    database_url: str | None = None,
    models_dir: Path | str | None = None,
    ray_address: str | None = None,
    max_shot_seconds: float | None = None,
    config: Path | str | None = None,
    environ: Mapping[str, str] | None = None,
) -> Settings:
    """Each setting from its flag, else its ``FARM_*`` variable, else the config file, else the default.

    The config file is ``config`` (``--config``), else ``FARM_CONFIG``, else ``<data dir>/farm.toml``; only a
    file outside the data dir may say where the data dir is. ConfigError, located, for a bad file.
    """
    env = os.environ if environ is None else environ
    named = named_config(str(config) if config else None, env)
    file = load_config(named) if named else FarmConfig()
    data = Path(data_dir or env.get("FARM_DATA_DIR") or file.data_dir or default_data_dir(env)).expanduser().resolve()
    if named is None:
        found = config_in(data)
        file = load_config(found) if found else file
        if file.data_dir is not None and file.data_dir.resolve() != data:
            hint = "name the file with --config / FARM_CONFIG to set data_dir, or remove the key"
            raise _config_error(file, "farm.data_dir", "a farm.toml inside the data dir cannot move it", hint)
    if file.database_url and has_password(file.database_url):
        hint = f"put the password in ~/.pgpass or the whole URL in {DATABASE_URL_VARIABLE}"
        raise _config_error(file, "farm.database_url", "the database URL in farm.toml holds a password", hint)
    models = Path(models_dir or env.get("FARM_MODELS_DIR") or file.models_dir or SHIPPED_MODELS_DIR)
    from_env = env.get(DATABASE_URL_VARIABLE) or None
    chosen = database_url or from_env or file.database_url
    url = with_password_from(chosen, from_env) if chosen else sqlite_url(data / "farm.db")
    max_seconds = max_shot_seconds if max_shot_seconds is not None else _env_float(env, "FARM_MAX_SHOT_SECONDS")
    retry_seconds = _env_float(env, "FARM_DATABASE_RETRY_SECONDS")
    if retry_seconds is None:
        retry_seconds = file.database_retry_seconds or defaults.DATABASE_RETRY_SECONDS
    weights = env.get("FARM_WEIGHTS_DIR") or file.weights_dir or data / "weights"
    return Settings(
        data_dir=data,
        database_url=url,
        models_dir=models.expanduser().resolve(),
        weights_dir=Path(weights).expanduser().resolve(),
        ray_address=ray_address or env.get("FARM_RAY_ADDRESS") or file.ray_address or None,
        max_shot_seconds=max_seconds if max_seconds is not None else file.max_shot_seconds or defaults.MAX_SHOT_SECONDS,
        database_retry_seconds=retry_seconds,
        user=env.get("FARM_USER") or env.get("USER") or env.get("USERNAME") or _login_name(),
        record_start=env.get("FARM_RECORD_START") or file.record_start or DEFAULT_RECORD_START,
        config=file,
    )


def _config_error(file: FarmConfig, key: str, message: str, hint: str) -> ConfigError:
    line, column = file.locations.get(key, (1, 1))
    return ConfigError([Finding(str(file.path), line, column, key, message, hint)])


def has_password(url: str) -> bool:
    """Whether ``url`` carries a password, in its user part or as libpq's ``?password=`` parameter.

    A string that is not a URL has none that farm could find; opening it fails later, with its own message.
    """
    parsed = _parsed(url)
    return parsed is not None and _password_of(parsed) is not None


def without_password(url: str) -> str:
    """``url`` with no password at all (not ``***``), for a command line: the process that reads it finds the
    password in FARM_DATABASE_URL (see ``with_password_from``) or in libpq's ~/.pgpass.

    Raises UsageError for a string that is not a URL, since the password in it could not be taken out; the
    message does not repeat the string.
    """
    parsed = _parsed(url)
    if parsed is None:
        raise UsageError(
            f"the database URL in --db / {DATABASE_URL_VARIABLE} is not a URL (e.g. postgresql://farm@db-host/farm)"
        )
    if _password_of(parsed) is None:
        return url
    stripped = parsed._replace(password=None).difference_update_query(["password"])
    return stripped.render_as_string(hide_password=False)


def with_password_from(url: str, source: str | None) -> str:
    """``url``, given ``source``'s password when ``url`` has none and both name the same database.

    The same database means the same backend (``postgresql`` and ``postgresql+psycopg`` are one), user,
    host, port and database name, written alike (``db`` and ``db:5432`` differ): a password is never handed
    to another server or another role. ``url``
    keeps everything else it says (its driver, its query options such as ``sslmode``).
    """
    if source is None or has_password(url) or not has_password(source):
        return url
    target, origin = _parsed(url), _parsed(source)
    if target is None or origin is None or _identity(target) != _identity(origin):
        return url
    if origin.password is not None:
        return target._replace(password=origin.password).render_as_string(hide_password=False)
    with_query = target.update_query_dict({"password": origin.query["password"]})
    return with_query.render_as_string(hide_password=False)


def secret_environment(settings: Settings) -> dict[str, str]:
    """The variables a farm process started by this one needs beyond its command line: the full database
    URL, password included (an environment is readable only by its own user and root, a command line by all).
    """
    return {DATABASE_URL_VARIABLE: settings.database_url}


def child_environment(settings: Settings, environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment for a farm process started on this machine: this one's, plus ``secret_environment``."""
    return {**(os.environ if environ is None else environ), **secret_environment(settings)}


@dataclass(frozen=True)
class ServerSettings:
    """A farm manager to talk to over HTTP (``--server``/``FARM_SERVER``) and the token to talk with."""

    url: str
    token: str | None


def resolve_server(
    *,
    server: str | None = None,
    token: str | None = None,
    config: Path | str | None = None,
    data_dir: Path | str | None = None,
    environ: Mapping[str, str] | None = None,
) -> ServerSettings | None:
    """The farm manager the command line names (``--server``, else ``FARM_SERVER``, else the config file's
    ``[server] url``), or None to work on the database directly; the token from ``--token``, else
    ``FARM_TOKEN``."""
    env = os.environ if environ is None else environ
    url = (server or env.get("FARM_SERVER") or "").strip()
    if not url:
        data = Path(data_dir or env.get("FARM_DATA_DIR") or default_data_dir(env)).expanduser()
        found = named_config(str(config) if config else None, env) or config_in(data)
        url = (load_config(found).server_url or "") if found else ""
    if not url:
        return None
    if not url.startswith(("http://", "https://")):
        raise UsageError(f"--server {url!r} is not an http:// or https:// URL; e.g. --server http://farm-head:8765")
    url = url.rstrip("/")
    return ServerSettings(url=url, token=token or env.get("FARM_TOKEN") or local_token(url, env))


LOCAL_TOKEN_FILE = "api-token"
"""In the data dir: the admin token ``farm serve`` makes on its first start, readable by its user only."""


def local_token(url: str, environ: Mapping[str, str]) -> str | None:
    """The token a ``farm serve`` on this machine left in the data dir, for a ``--server`` on loopback only
    (it is never sent to another machine); None if there is none."""
    from urllib.parse import urlsplit

    if urlsplit(url).hostname not in ("127.0.0.1", "localhost", "::1"):
        return None
    data = Path(environ.get("FARM_DATA_DIR") or default_data_dir(environ)).expanduser()
    try:
        return (data / LOCAL_TOKEN_FILE).read_text(encoding="utf-8").strip() or None
    except OSError:
        return None


def ffmpeg_override(environ: Mapping[str, str] | None = None) -> str | None:
    """``FARM_FFMPEG``: another ffmpeg build to run (a path, or a name on PATH), e.g. a studio's with NVENC.

    Read here like every setting; the media layer asks for it, since Ray workers render where no Settings
    object was handed down.
    """
    return (os.environ if environ is None else environ).get("FARM_FFMPEG") or None


def debug_requested(environ: Mapping[str, str] | None = None) -> bool:
    """``FARM_DEBUG`` set: an internal error prints its traceback instead of writing a crash log."""
    return bool((os.environ if environ is None else environ).get("FARM_DEBUG"))


def _parsed(url: str) -> URL | None:
    # SQLAlchemy is imported here, not at the top: settings are resolved by every command, and only the
    # ones that touch a database URL's parts should pay for the import.
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    try:
        return make_url(url)
    except ArgumentError:
        return None


def _password_of(url: URL) -> str | None:
    if url.password is not None:
        return str(url.password)
    query_password = url.query.get("password")
    if query_password is None or isinstance(query_password, str):
        return query_password
    return query_password[-1]  # given twice (?password=a&password=b) it is still a password


def _identity(url: URL) -> tuple[object, ...]:
    """What names one database on one server as one role (``?host=`` is libpq's socket directory)."""
    return url.get_backend_name(), url.username, url.host, url.query.get("host"), url.port, url.database


def _login_name() -> str:
    """The account's name from the password database, where there is one (``USER`` unset, as under cron).

    ``pwd`` is imported here, not at the top: Windows has no such module (there ``USERNAME`` names the
    user), and every farm command resolves its settings.
    """
    try:
        import pwd
    except ImportError:
        return "unknown"
    try:
        return pwd.getpwuid(os.getuid()).pw_name
    except KeyError:
        return f"uid{os.getuid()}"


def _env_float(env: Mapping[str, str], name: str) -> float | None:
    raw = env.get(name)
    if raw is None or raw == "":
        return None
    try:
        value = float(raw)
    except ValueError as exc:
        raise UsageError(f"environment variable {name}={raw!r} is not a number; set it to seconds, e.g. 600") from exc
    if value <= 0:
        raise UsageError(f"environment variable {name}={raw!r} must be positive")
    return value


def named_secret(variable: str | None, environ: Mapping[str, str] | None = None) -> str | None:
    """The secret the config file names by its environment variable (a webhook's signing secret, an SMTP
    password): read here, like every setting, so the file never holds it."""
    if not variable:
        return None
    return (os.environ if environ is None else environ).get(variable) or None
