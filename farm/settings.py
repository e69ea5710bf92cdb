"""Configuration in one place: command-line flags, then ``FARM_*`` environment variables, then defaults.

Nothing else in farm reads the environment; layers receive a Settings object.
"""

from __future__ import annotations

import os
import pwd
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from farm import defaults
from farm.errors import UsageError

REPO_ROOT = Path(__file__).resolve().parents[1]


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
    user: str = "unknown"

    @property
    def artifacts_dir(self) -> Path:
        return self.data_dir / "artifacts"

    @property
    def edits_dir(self) -> Path:
        return self.data_dir / "edits"

    @property
    def logs_dir(self) -> Path:
        return self.data_dir / "logs"

    @property
    def weights_digest_memo(self) -> Path:
        """Where the per-file digests of model weights are memoised (hashing gigabytes per plan is slow)."""
        return self.data_dir / "cache" / "weights-digests.json"


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
    environ: Mapping[str, str] | None = None,
) -> Settings:
    env = os.environ if environ is None else environ
    data = Path(data_dir or env.get("FARM_DATA_DIR") or default_data_dir(env)).expanduser().resolve()
    models = Path(models_dir or env.get("FARM_MODELS_DIR") or REPO_ROOT / "models").expanduser().resolve()
    url = database_url or env.get("FARM_DATABASE_URL") or sqlite_url(data / "farm.db")
    max_seconds = max_shot_seconds if max_shot_seconds is not None else _env_float(env, "FARM_MAX_SHOT_SECONDS")
    return Settings(
        data_dir=data,
        database_url=url,
        models_dir=models,
        weights_dir=Path(env.get("FARM_WEIGHTS_DIR") or data / "weights").expanduser().resolve(),
        ray_address=ray_address or env.get("FARM_RAY_ADDRESS") or None,
        max_shot_seconds=max_seconds if max_seconds is not None else defaults.MAX_SHOT_SECONDS,
        user=env.get("FARM_USER") or env.get("USER") or _login_name(),
    )


def ffmpeg_override(environ: Mapping[str, str] | None = None) -> str | None:
    """``FARM_FFMPEG``: another ffmpeg build to run (a path, or a name on PATH), e.g. a studio's with NVENC.

    Read here like every setting; the media layer asks for it, since Ray workers render where no Settings
    object was handed down.
    """
    return (os.environ if environ is None else environ).get("FARM_FFMPEG") or None


def debug_requested(environ: Mapping[str, str] | None = None) -> bool:
    """``FARM_DEBUG`` set: an internal error prints its traceback instead of writing a crash log."""
    return bool((os.environ if environ is None else environ).get("FARM_DEBUG"))


def _login_name() -> str:
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
