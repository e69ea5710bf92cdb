"""Joining Ray: the cluster at an address, or a Ray started on this machine and bound to loopback."""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

from farm.engine import ray_owners
from farm.errors import UsageError

REACH_TIMEOUT_SECONDS = 3.0
"""How long to try the head's port before saying it cannot be reached (Ray itself retries for minutes)."""


class RayUnreachable(UsageError):
    """The Ray head at the given address does not answer: farm says so at once instead of hanging."""


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
        check_reachable(address)
        try:
            with _held_stderr():  # Ray's C++ client logs every failed retry; one line from farm says it all
                ray.init(address=address, **quiet)
        except ConnectionError as exc:
            raise RayUnreachable(f"cannot join the Ray cluster at --address {address}: {exc}; {_HOW_TO_START}") from exc
        return
    # A local instance listens on loopback only; without this Ray binds the machine's public address.
    os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")
    temp_dir = ray_temp_dir()
    ray_owners.reap_dead_owners(temp_dir)
    ray.init(include_dashboard=False, _temp_dir=str(temp_dir), **quiet)
    ray_owners.record_owner(temp_dir, *_this_head())


def ray_temp_dir() -> Path:
    """Where a local Ray keeps its sessions (and farm its owner records, ``farm.engine.ray_owners``)."""
    # Ray's unix socket paths must stay under 107 bytes, so the session lives under /tmp, not the data dir;
    # one per user, since another user's folder is not writable.
    path = Path("/tmp") / f"farm-ray-{os.getuid()}"
    path.mkdir(parents=True, exist_ok=True)
    return path


def reap_dead_local_rays() -> list[int]:
    """Stop what the local Rays of farm processes that are gone (killed) left running; the pids stopped."""
    return ray_owners.reap_dead_owners(ray_temp_dir())


def _this_head() -> tuple[str, str]:
    """The session folder and node id of the head this process just started (every process of the head
    names the folder, or carries the node id in its environment)."""
    import ray
    from ray._private import worker

    node = worker._global_node
    if node is None:
        return "", ""
    return node.get_session_dir_path(), ray.get_runtime_context().get_node_id()


_HOW_TO_START = (
    "start the head with `ray start --head --port=6379` on that machine, or check --address / FARM_RAY_ADDRESS"
)


def check_reachable(address: str) -> None:
    """Raise RayUnreachable unless the head's GCS port at ``host:port`` accepts a connection within a few
    seconds (``auto`` and ``ray://`` addresses are left to Ray, which fails fast for them)."""
    if address == "auto" or "://" in address:
        return
    host, _, port = address.rpartition(":")
    if not host or not port.isdigit():
        raise RayUnreachable(f"--address {address}: give the Ray head as host:port (e.g. head:6379) or auto")
    try:
        with socket.create_connection((host, int(port)), timeout=REACH_TIMEOUT_SECONDS):
            return
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        raise RayUnreachable(f"cannot reach the Ray head at --address {address} ({reason}); {_HOW_TO_START}") from exc


@contextlib.contextmanager
def _held_stderr() -> Iterator[None]:
    """Hold back what native code writes to stderr inside the block; pass it on only if the block succeeds
    (a failure is reported by the exception, without pages of retries)."""
    try:
        saved = os.dup(2)
    except OSError:  # no stderr to hold
        yield
        return
    with tempfile.TemporaryFile() as held:
        sys.stderr.flush()
        os.dup2(held.fileno(), 2)
        try:
            yield
        except BaseException:
            os.dup2(saved, 2)
            raise
        else:
            os.dup2(saved, 2)
            held.seek(0)
            sys.stderr.write(held.read().decode(errors="replace"))
        finally:
            os.close(saved)
