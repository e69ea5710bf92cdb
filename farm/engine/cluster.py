"""Joining Ray: the cluster at an address, or a Ray started on this machine and bound to loopback."""

from __future__ import annotations

import logging
import os
from pathlib import Path


def connect_ray(address: str | None) -> None:
    """Join the cluster at ``address`` (``auto`` or ``host:port``), or start Ray on this machine (loopback only).

    Does nothing when this process is connected already (a test's cluster, a Ray job's driver).
    """
    import ray

    if ray.is_initialized():
        return
    quiet = {"log_to_driver": False, "logging_level": logging.WARNING}
    # Ray announces its token authentication setting on every start; it is not news to a user.
    logging.getLogger("ray._private.authentication.authentication_token_setup").setLevel(logging.ERROR)
    if address:
        ray.init(address=address, **quiet)
        return
    # A local instance listens on loopback only; without this Ray binds the machine's public address.
    os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")
    ray.init(include_dashboard=False, _temp_dir=str(_ray_temp_dir()), **quiet)


def _ray_temp_dir() -> Path:
    # Ray's unix socket paths must stay under 107 bytes, so the session lives under /tmp, not the data dir;
    # one per user, since another user's folder is not writable.
    path = Path("/tmp") / f"farm-ray-{os.getuid()}"
    path.mkdir(parents=True, exist_ok=True)
    return path
