"""Who owns each local Ray farm started, so that what a killed farm left is stopped by the next one.

``ray.init()`` without an address starts a head on this machine (GCS, raylet, and the dashboard and
runtime-env agents the raylet spawns). ``ray.shutdown()`` stops it, but a driver killed with SIGKILL never
gets there, and the agents (about 200 MB) live on with nothing to serve. So farm records, for each local
head it starts, the owning process (pid and kernel start time, which tells it from a later process given
the same pid), the head's session folder and its node id, in ``<ray temp dir>/owners/``; every farm that
starts a driver, the manager or a local Ray first reads those records, and for each owner that is gone
stops the processes of its session: exactly those whose command line names that session folder, or whose
environment names that node (``RAY_NODE_ID``: the agents and workers, whose command line Ray rewrites to
``ray::DashboardAgent`` and the like), found by pid in ``/proc``; never every Ray process on the machine
(other clusters may be running there).

Linux only (``/proc``); elsewhere nothing is recorded and nothing is stopped.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import time
from dataclasses import dataclass
from pathlib import Path

from farm import files

log = logging.getLogger(__name__)

_PROC = Path("/proc")
TERM_GRACE_SECONDS = 3.0
"""How long the processes of a dead owner's session get to exit on SIGTERM before they are killed."""


@dataclass(frozen=True)
class RayOwner:
    """One local Ray head and the process that started it."""

    pid: int
    started: int
    """The owner's start time in clock ticks since boot (``/proc/<pid>/stat`` field 22)."""
    session_dir: str
    node_id: str = ""

    def alive(self) -> bool:
        return process_start_time(self.pid) == self.started


def supported() -> bool:
    return (_PROC / "self" / "stat").is_file()


def owners_dir(ray_temp_dir: Path) -> Path:
    return ray_temp_dir / "owners"


def record_owner(ray_temp_dir: Path, session_dir: str, node_id: str) -> Path | None:
    """Record this process as the owner of the local head with ``session_dir`` and ``node_id``."""
    started = process_start_time(os.getpid())
    if started is None:
        return None
    folder = owners_dir(ray_temp_dir)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{os.getpid()}-{started}.json"
    document = {"pid": os.getpid(), "started": started, "session_dir": session_dir, "node_id": node_id}
    files.write_text(path, json.dumps(document) + "\n")
    return path


def read_owners(ray_temp_dir: Path) -> list[tuple[Path, RayOwner]]:
    """Every owner record (an unreadable one is skipped: a record being written, or not farm's)."""
    records: list[tuple[Path, RayOwner]] = []
    for path in sorted(owners_dir(ray_temp_dir).glob("*.json")):
        try:
            document = json.loads(path.read_text(encoding="utf-8"))
            records.append(
                (
                    path,
                    RayOwner(
                        int(document["pid"]),
                        int(document["started"]),
                        str(document["session_dir"]),
                        str(document.get("node_id", "")),
                    ),
                )
            )
        except (OSError, ValueError, KeyError, TypeError):
            continue
    return records


def session_processes(session_dir: str, node_id: str = "") -> list[int]:
    """The pids of the processes whose command line names ``session_dir`` (the head's GCS, raylet and
    monitors), or whose environment names ``node_id`` (the agents and workers the raylet spawned)."""
    if not session_dir:
        return []
    node = f"RAY_NODE_ID={node_id}\0".encode() if node_id else None
    found: list[int] = []
    for entry in _PROC.iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            command = (entry / "cmdline").read_bytes()
        except OSError:
            continue  # exited meanwhile, or not ours to read
        if session_dir.encode() in command or (node is not None and node in _environment(entry)):
            found.append(int(entry.name))
    return found


def _environment(entry: Path) -> bytes:
    try:
        return (entry / "environ").read_bytes() + b"\0"
    except OSError:
        return b""


def reap_dead_owners(ray_temp_dir: Path, *, grace_seconds: float = TERM_GRACE_SECONDS) -> list[int]:
    """Stop the processes of every recorded local head whose owner is gone, and drop its record; returns
    the pids stopped. An owner still alive keeps its head."""
    if not supported():
        return []
    stopped: list[int] = []
    for path, owner in read_owners(ray_temp_dir):
        if owner.alive():
            continue
        pids = session_processes(owner.session_dir, owner.node_id)
        if pids:
            log.warning(
                "stopping %d Ray process(es) of session %s, left by farm process %d which is gone: %s",
                len(pids), owner.session_dir, owner.pid, " ".join(map(str, pids)),
            )  # fmt: skip
            stop_processes(pids, grace_seconds=grace_seconds)
            stopped += pids
        path.unlink(missing_ok=True)
    return stopped


def stop_processes(pids: list[int], *, grace_seconds: float) -> None:
    """SIGTERM each pid, then SIGKILL what is still there after ``grace_seconds``."""
    starts = {pid: process_start_time(pid) for pid in pids}
    _signal_each(starts, signal.SIGTERM)
    deadline = time.monotonic() + grace_seconds
    while time.monotonic() < deadline and any(_same_process(pid, start) for pid, start in starts.items()):
        time.sleep(0.1)
    _signal_each({pid: start for pid, start in starts.items() if _same_process(pid, start)}, signal.SIGKILL)


def _signal_each(starts: dict[int, int | None], sig: signal.Signals) -> None:
    for pid, start in starts.items():
        if start is not None and _same_process(pid, start):
            try:
                os.kill(pid, sig)
            except (ProcessLookupError, PermissionError):
                continue


def _same_process(pid: int, start: int | None) -> bool:
    """The process ``pid`` is still the one that started at ``start`` (and is not a zombie)."""
    return start is not None and process_start_time(pid) == start


def process_start_time(pid: int) -> int | None:
    """The kernel start time of live process ``pid`` (None if there is none, or it is a zombie)."""
    try:
        stat = (_PROC / str(pid) / "stat").read_text()
    except OSError:
        return None
    fields = stat[stat.rindex(")") + 2 :].split()  # the command name in parentheses may hold spaces
    if fields[0] in ("Z", "X"):
        return None
    return int(fields[19])
