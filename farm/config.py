"""``farm.toml``: what a studio writes down once instead of passing flags to every command.

The file holds where the farm lives (data dir, database, models, Ray head), how clients reach the manager and
where it listens, the shows with their shares, quotas and budgets, the people with their roles and email,
and where notifications go. It is found at ``--config`` / ``FARM_CONFIG``, else ``<data dir>/farm.toml``.
``farm.settings`` merges it: flags, then ``FARM_*`` variables, then this file, then defaults.

Every mistake is reported with the file, line and column of the key, what is allowed there, and all of
them at once, like a shot list's findings. Secrets stay out of the file: a webhook's signing secret and an
SMTP password are named by the environment variable that holds them (``secret_env``, ``password_env``).
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from farm.errors import EXIT_BAD_INPUT, FarmError, Finding

CONFIG_FILE = "farm.toml"
CONFIG_VARIABLE = "FARM_CONFIG"

NOTIFY_EVENTS = ("job.done", "job.failed", "edit.failed_qc", "shot.stuck", "budget.spent")
"""What a notification target may ask to hear about."""
ROLES = ("editor", "producer", "admin")
WEBHOOK_FORMATS = ("standard", "slack")
"""``standard``: farm's JSON event, signed per Standard Webhooks; ``slack``: an incoming-webhook message."""


@dataclass(frozen=True)
class ShowConfig:
    name: str
    share: float | None = None
    gpu_quota: int | None = None
    gpu_hour_budget: float | None = None


@dataclass(frozen=True)
class PersonConfig:
    name: str
    role: str | None = None
    """The role ``farm token create NAME`` gives this person when none is asked for."""
    email: str | None = None
    notify: tuple[str, ...] = ()
    """Events mailed to ``email`` about the jobs this person submitted."""


@dataclass(frozen=True)
class WebhookConfig:
    url: str
    events: tuple[str, ...] = NOTIFY_EVENTS
    shows: tuple[str, ...] = ()
    """Only these shows' jobs; empty: every show."""
    format: str = "standard"
    secret_env: str | None = None
    """The environment variable holding the signing secret (``whsec_`` + base64, Standard Webhooks)."""


@dataclass(frozen=True)
class EmailConfig:
    to: tuple[str, ...]
    events: tuple[str, ...] = NOTIFY_EVENTS
    shows: tuple[str, ...] = ()


@dataclass(frozen=True)
class SmtpConfig:
    host: str = "127.0.0.1"
    port: int = 25
    sender: str = "farm@localhost"
    starttls: bool = False
    username: str | None = None
    password_env: str | None = None


PATH_MAP_PLATFORMS = ("linux", "windows", "macos")
"""The platforms a ``[[path_map]]`` entry names a share's root on."""
DEFAULT_RECORD_START = "01:00:00:00"
"""Where an edit's record timecode starts: the hour-one convention of broadcast masters."""


@dataclass(frozen=True)
class PathMapping:
    """One share, mounted at ``linux`` on Linux, ``windows`` on Windows and ``macos`` on macOS."""

    linux: str | None = None
    windows: str | None = None
    macos: str | None = None

    def root(self, platform: str) -> str | None:
        return getattr(self, platform) if platform in PATH_MAP_PLATFORMS else None


@dataclass(frozen=True)
class FarmConfig:
    """A parsed, checked ``farm.toml``; every field None (or empty) that the file leaves out."""

    path: Path | None = None
    data_dir: Path | None = None
    database_url: str | None = None
    models_dir: Path | None = None
    weights_dir: Path | None = None
    ray_address: str | None = None
    max_shot_seconds: float | None = None
    database_retry_seconds: float | None = None
    """``[farm] database_retry_seconds``: how long a database outage is ridden out (``farm.db.retry``)."""
    server_url: str | None = None
    listen: str | None = None
    shows: tuple[ShowConfig, ...] = ()
    people: tuple[PersonConfig, ...] = ()
    webhooks: tuple[WebhookConfig, ...] = ()
    emails: tuple[EmailConfig, ...] = ()
    smtp: SmtpConfig | None = None
    record_start: str | None = None
    """``[editorial] record_start``: the edit's first record timecode (SMPTE, ``;`` for drop-frame)."""
    path_map: tuple[PathMapping, ...] = ()
    locations: Mapping[str, tuple[int, int]] = field(default_factory=dict)
    """``section.key`` -> (line, column) of each key in the file, for errors found after loading."""

    def where(self, key: str) -> str:
        line, column = self.locations.get(key, (1, 1))
        return f"{self.path}:{line}:{column}"


@dataclass
class ConfigError(FarmError):
    """``farm.toml`` is invalid: every finding, each at its key's line and column."""

    findings: Sequence[Finding] = field(default_factory=list)
    exit_code = EXIT_BAD_INPUT

    def __post_init__(self) -> None:
        super().__init__(self.__str__())

    def __str__(self) -> str:
        return "\n".join(finding.format() for finding in self.findings) or "invalid farm.toml"


def named_config(explicit: str | None, environ: Mapping[str, str]) -> Path | None:
    """The config file ``--config`` (else ``FARM_CONFIG``) names, which must exist; None if neither does."""
    named = explicit or environ.get(CONFIG_VARIABLE) or None
    if named is None:
        return None
    path = Path(named).expanduser()
    if not path.is_file():
        source = "--config" if explicit else CONFIG_VARIABLE
        raise ConfigError([Finding(str(path), 1, 1, source, "no such config file", "create it, or name another")])
    return path.resolve()


def config_in(data_dir: Path) -> Path | None:
    """The data dir's ``farm.toml``, if there is one."""
    candidate = data_dir / CONFIG_FILE
    return candidate if candidate.is_file() else None


def load_config(path: Path) -> FarmConfig:
    """Read and check ``path``; ConfigError with every problem found."""
    text = path.read_text(encoding="utf-8")
    try:
        document = tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        line, column = _decode_position(str(error))
        raise ConfigError([Finding(str(path), line, column, "", f"not TOML: {_decode_reason(error)}")]) from None
    checker = _Checker(path, _key_positions(text))
    config = checker.config(document)
    if checker.findings:
        raise ConfigError(checker.findings)
    return config


# ---- checking ------------------------------------------------------------------------------------------

Check = Callable[[Any], str | None]
"""Returns what is wrong with a value, or None."""


def _text(value: Any) -> str | None:
    return None if isinstance(value, str) and value.strip() else "must be a non-empty string"


def _number(minimum: float, *, integer: bool = False, exclusive: bool = False) -> Check:
    def check(value: Any) -> str | None:
        kind = int if integer else (int, float)
        if isinstance(value, bool) or not isinstance(value, kind):
            return f"must be {'an integer' if integer else 'a number'}"
        if value < minimum or (exclusive and value == minimum):
            return f"must be {'more than' if exclusive else 'at least'} {minimum:g}"
        return None

    return check


def _flag(value: Any) -> str | None:
    return None if isinstance(value, bool) else "must be true or false"


def _one_of(allowed: Sequence[str]) -> Check:
    def check(value: Any) -> str | None:
        return None if value in allowed else f"must be one of {', '.join(allowed)}"

    return check


def _list_of(allowed: Sequence[str] | None) -> Check:
    def check(value: Any) -> str | None:
        if not isinstance(value, list) or not all(isinstance(item, str) and item for item in value):
            return "must be a list of strings"
        unknown = [item for item in value if allowed is not None and item not in allowed]
        return f"{', '.join(unknown)} unknown; allowed: {', '.join(allowed or ())}" if unknown else None

    return check


def _url(value: Any) -> str | None:
    if _text(value):
        return "must be a URL"
    return None if str(value).startswith(("http://", "https://")) else "must be an http:// or https:// URL"


def _listen(value: Any) -> str | None:
    ok = isinstance(value, str) and re.fullmatch(r"[^\s:]+:\d{1,5}", value)
    return None if ok else "must be HOST:PORT, e.g. 127.0.0.1:8765"


def _smpte(value: Any) -> str | None:
    ok = isinstance(value, str) and re.fullmatch(r"\d{2}:[0-5]\d:[0-5]\d[:;]\d{2}", value)
    return None if ok else "must be an SMPTE timecode HH:MM:SS:FF (HH:MM:SS;FF for drop-frame), e.g. 01:00:00:00"


def _linux_root(value: Any) -> str | None:
    ok = isinstance(value, str) and value.startswith("/") and value.strip() == value
    return None if ok else "must be an absolute path, e.g. /mnt/farm"


def _windows_root(value: Any) -> str | None:
    ok = isinstance(value, str) and re.fullmatch(r"[A-Za-z]:\\[^/]*|\\\\[^\\/]+\\[^\\/]+(\\[^/]*)?", value)
    return None if ok else "must be a drive or UNC path, e.g. Z:\\farm or \\\\nas\\farm (in TOML, 'Z:\\farm')"


def _env_name(value: Any) -> str | None:
    ok = isinstance(value, str) and re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", value)
    return None if ok else "must be the name of an environment variable, e.g. FARM_WEBHOOK_SECRET"


FARM_KEYS: dict[str, Check] = {
    "data_dir": _text,
    "database_url": _text,
    "models_dir": _text,
    "weights_dir": _text,
    "ray_address": _text,
    "max_shot_seconds": _number(0, exclusive=True),
    "database_retry_seconds": _number(0, exclusive=True),
}
SERVER_KEYS: dict[str, Check] = {"url": _url, "listen": _listen}
SHOW_KEYS: dict[str, Check] = {
    "share": _number(0, exclusive=True),
    "gpu_quota": _number(0, integer=True),
    "gpu_hour_budget": _number(0),
}
PERSON_KEYS: dict[str, Check] = {"role": _one_of(ROLES), "email": _text, "notify": _list_of(NOTIFY_EVENTS)}
WEBHOOK_KEYS: dict[str, Check] = {
    "url": _url,
    "events": _list_of(NOTIFY_EVENTS),
    "shows": _list_of(None),
    "format": _one_of(WEBHOOK_FORMATS),
    "secret_env": _env_name,
}
EMAIL_KEYS: dict[str, Check] = {"to": _list_of(None), "events": _list_of(NOTIFY_EVENTS), "shows": _list_of(None)}
SMTP_KEYS: dict[str, Check] = {
    "host": _text,
    "port": _number(1, integer=True),
    "from": _text,
    "starttls": _flag,
    "username": _text,
    "password_env": _env_name,
}
EDITORIAL_KEYS: dict[str, Check] = {"record_start": _smpte}
PATH_MAP_KEYS: dict[str, Check] = {"linux": _linux_root, "windows": _windows_root, "macos": _linux_root}
SECTIONS = ("farm", "server", "shows", "people", "notifications", "editorial", "path_map")


class _Checker:
    def __init__(self, path: Path, positions: dict[str, tuple[int, int]]) -> None:
        self.path = path
        self.positions = positions
        self.findings: list[Finding] = []

    def config(self, document: dict[str, Any]) -> FarmConfig:
        for name in document:
            if name not in SECTIONS:
                self._problem(name, f"unknown section [{name}]", f"allowed: {', '.join(SECTIONS)}")
        farm = self._table(document, "farm", FARM_KEYS)
        server = self._table(document, "server", SERVER_KEYS)
        notifications = self._mapping(document.get("notifications", {}), "notifications")
        for name in notifications:
            if name not in ("webhook", "email", "smtp"):
                self._problem(f"notifications.{name}", f"unknown key {name}", "allowed: webhook, email, smtp")
        smtp = self._table(notifications, "smtp", SMTP_KEYS, prefix="notifications.")
        editorial = self._table(document, "editorial", EDITORIAL_KEYS)
        return FarmConfig(
            path=self.path,
            data_dir=self._path(farm.get("data_dir")),
            database_url=farm.get("database_url"),
            models_dir=self._path(farm.get("models_dir")),
            weights_dir=self._path(farm.get("weights_dir")),
            ray_address=farm.get("ray_address"),
            max_shot_seconds=farm.get("max_shot_seconds"),
            database_retry_seconds=farm.get("database_retry_seconds"),
            server_url=server.get("url"),
            listen=server.get("listen"),
            shows=tuple(ShowConfig(name, **values) for name, values in self._named(document, "shows", SHOW_KEYS)),
            people=tuple(
                PersonConfig(name, values.get("role"), values.get("email"), tuple(values.get("notify", ())))
                for name, values in self._named(document, "people", PERSON_KEYS)
            ),
            webhooks=tuple(self._webhook(entry) for entry in self._entries(notifications, "webhook", WEBHOOK_KEYS)),
            emails=tuple(self._email(entry) for entry in self._entries(notifications, "email", EMAIL_KEYS)),
            smtp=self._smtp(smtp) if "smtp" in notifications else None,
            record_start=editorial.get("record_start"),
            path_map=self._path_map(document.get("path_map", [])),
            locations=self.positions,
        )

    def _path(self, value: str | None) -> Path | None:
        if value is None:
            return None
        path = Path(value).expanduser()
        return path if path.is_absolute() else (self.path.parent / path).resolve()

    def _webhook(self, values: dict[str, Any]) -> WebhookConfig:
        return WebhookConfig(
            url=values.get("url", ""),
            events=tuple(values.get("events", NOTIFY_EVENTS)),
            shows=tuple(values.get("shows", ())),
            format=values.get("format", "standard"),
            secret_env=values.get("secret_env"),
        )

    def _email(self, values: dict[str, Any]) -> EmailConfig:
        return EmailConfig(
            to=tuple(values.get("to", ())),
            events=tuple(values.get("events", NOTIFY_EVENTS)),
            shows=tuple(values.get("shows", ())),
        )

    def _smtp(self, values: dict[str, Any]) -> SmtpConfig:
        defaults = SmtpConfig()
        return SmtpConfig(
            host=values.get("host", defaults.host),
            port=values.get("port", defaults.port),
            sender=values.get("from", defaults.sender),
            starttls=values.get("starttls", defaults.starttls),
            username=values.get("username"),
            password_env=values.get("password_env"),
        )

    def _path_map(self, value: Any) -> tuple[PathMapping, ...]:
        """``[[path_map]]`` entries: each a share's root on two or more platforms."""
        if not isinstance(value, list):
            self._problem("path_map", "must be a list of tables", "write each share as [[path_map]]")
            return ()
        mappings = []
        for index, entry in enumerate(value):
            label = f"path_map[{index}]"
            checked = self._checked(self._mapping(entry, label), label, PATH_MAP_KEYS)
            named = [key for key in PATH_MAP_KEYS if isinstance(entry, dict) and key in entry]
            if len(named) < 2:
                self._problem(
                    label,
                    f"[[path_map]] number {index + 1} names the share on {len(named)} platform(s)",
                    "give its root on at least two of linux, windows, macos",
                )
            mappings.append(PathMapping(**checked))
        return tuple(mappings)

    def _mapping(self, value: Any, where: str) -> dict[str, Any]:
        if isinstance(value, dict):
            return value
        self._problem(where, "must be a table", f"write it as [{where}]")
        return {}

    def _table(self, parent: dict[str, Any], name: str, keys: dict[str, Check], *, prefix: str = "") -> dict[str, Any]:
        where = f"{prefix}{name}"
        return self._checked(self._mapping(parent.get(name, {}), where), where, keys)

    def _checked(self, values: dict[str, Any], where: str, keys: dict[str, Check]) -> dict[str, Any]:
        good: dict[str, Any] = {}
        for key, value in values.items():
            check = keys.get(key)
            if check is None:
                self._problem(f"{where}.{key}", f"unknown key {key}", f"allowed in [{where}]: {', '.join(keys)}")
                continue
            wrong = check(value)
            if wrong:
                self._problem(f"{where}.{key}", f"{key} {wrong}, got {value!r}")
                continue
            good[key] = value
        return good

    def _named(
        self, document: dict[str, Any], section: str, keys: dict[str, Check]
    ) -> list[tuple[str, dict[str, Any]]]:
        """``[section.NAME]`` tables (a show, a person), each checked."""
        named = []
        for name, values in self._mapping(document.get(section, {}), section).items():
            where = f"{section}.{_quoted(name)}"
            named.append((name, self._checked(self._mapping(values, where), where, keys)))
        return named

    def _entries(self, parent: dict[str, Any], name: str, keys: dict[str, Check]) -> list[dict[str, Any]]:
        """``[[notifications.NAME]]`` entries, each checked and needing its first key (url, to)."""
        value = parent.get(name, [])
        where = f"notifications.{name}"
        if not isinstance(value, list):
            self._problem(where, "must be a list of tables", f"write each as [[{where}]]")
            return []
        required = next(iter(keys))
        entries = []
        for index, entry in enumerate(value):
            label = f"{where}[{index}]"
            checked = self._checked(self._mapping(entry, label), label, keys)
            if required not in entry:
                self._problem(label, f"[[{where}]] number {index + 1} has no {required}", f"add {required} = ...")
            entries.append(checked)
        return entries

    def _problem(self, key: str, message: str, hint: str = "") -> None:
        line, column = self.positions.get(key, self.positions.get(key.rsplit(".", 1)[0], (1, 1)))
        self.findings.append(Finding(str(self.path), line, column, key, message, hint))


# ---- where keys are --------------------------------------------------------------------------------------

_HEADER = re.compile(r"^\s*(\[\[?)\s*([^\]]+?)\s*\]\]?\s*(#.*)?$")
_KEY = re.compile(r'^(\s*)("[^"]*"|[A-Za-z0-9_-]+)\s*=')


def _key_positions(text: str) -> dict[str, tuple[int, int]]:
    """``section.key`` -> (line, column) for every table header and key line (``[[x]]`` entries numbered
    ``x[0]``, ``x[1]``): tomllib keeps no positions, and a located error needs them."""
    positions: dict[str, tuple[int, int]] = {}
    table = ""
    counts: dict[str, int] = {}
    for number, line in enumerate(text.splitlines(), start=1):
        header = _HEADER.match(line)
        if header:
            name = ".".join(_quoted(part) for part in _split_dotted(header.group(2)))
            if header.group(1) == "[[":
                index = counts.get(name, 0)
                counts[name] = index + 1
                positions.setdefault(name, (number, 1))
                name = f"{name}[{index}]"
            table = name
            positions.setdefault(table, (number, 1))
            continue
        key = _KEY.match(line)
        if key:
            name = key.group(2).strip('"')
            positions.setdefault(f"{table}.{name}" if table else name, (number, len(key.group(1)) + 1))
    return positions


def _split_dotted(name: str) -> list[str]:
    return [part.strip().strip('"') for part in re.findall(r'"[^"]*"|[^.]+', name)]


def _quoted(name: str) -> str:
    return f'"{name}"' if not re.fullmatch(r"[A-Za-z0-9_-]+", name) else name


def _decode_position(message: str) -> tuple[int, int]:
    found = re.search(r"line (\d+), column (\d+)", message)
    return (int(found.group(1)), int(found.group(2))) if found else (1, 1)


def _decode_reason(error: tomllib.TOMLDecodeError) -> str:
    return re.sub(r"\s*\(at line \d+, column \d+\)", "", str(error))
