"""Holding a job's driver lease for as long as a process works on it: rendering, assembling, retaking.

The lease (``farm.db.lease``) is what tells a live driver from a dead one. A ``DriverLease`` claims it
(waiting out a dead driver's heartbeat), recovers the attempts a dead driver left running (removing the
partial files their renders left, ``farm.jobs.debris.recover_lost_attempts``), renews it
from a background thread (so a minutes-long assembly keeps it), and gives it up at the end. The same beat
renews the cache-key claims of the job's running attempts (``farm.db.claims``): they live as long as the
lease does, however long the dispatching loop is held up.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
import uuid
from pathlib import Path
from types import TracebackType

from farm.db import lease
from farm.db.claims import renew_driven_claims
from farm.db.session import Database
from farm.engine.messages import EngineEvent, EngineEventKind, Observer, ignore_events
from farm.errors import UsageError
from farm.jobs.debris import recover_lost_attempts

log = logging.getLogger(__name__)


def driver_name(role: str = "driver") -> str:
    """The audit name of this process for ``role``: ``driver@host``."""
    return f"{role}@{socket.gethostname()}"


class DriverLease:
    """``with DriverLease(db, job_id, ...)``: this process drives the job inside the block."""

    def __init__(
        self,
        db: Database,
        job_id: int,
        *,
        heartbeat_seconds: float,
        stale_after_seconds: float,
        observer: Observer = ignore_events,
        by: str | None = None,
        artifacts_dir: Path | None = None,
    ) -> None:
        self.db = db
        self.artifacts_dir = artifacts_dir
        """The artifact store, whose partial files of a dead driver's renders go when they are recovered."""
        self.job_id = job_id
        self.by = by or driver_name()
        self.driver_id = f"{self.by}-{os.getpid()}-{uuid.uuid4().hex[:6]}"
        self.heartbeat_seconds = heartbeat_seconds
        self.stale_after_seconds = stale_after_seconds
        self.observe = observer
        self._stop = threading.Event()
        self._beats: threading.Thread | None = None

    def __enter__(self) -> DriverLease:
        self._claim()
        self._beats = threading.Thread(target=self._beat, name=f"lease-job-{self.job_id}", daemon=True)
        self._beats.start()
        recovered = recover_lost_attempts(
            self.db, self.job_id, self.artifacts_dir, by=self.by, lease_seconds=self.stale_after_seconds
        )
        if recovered:
            self.observe(
                EngineEvent(EngineEventKind.MESSAGE, message=f"recovered {recovered} shot(s) from a lost driver")
            )
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, traceback: TracebackType | None
    ) -> None:
        self._stop.set()
        if self._beats is not None:
            self._beats.join()
        lease.release_driver(self.db, self.job_id, self.driver_id)

    def _claim(self) -> None:
        """Become the job's driver. A killed driver's lease lapses after its heartbeat goes stale, so a
        resume started right after the kill waits that long; a driver that is still alive keeps the job."""
        deadline = time.monotonic() + self.stale_after_seconds + self.heartbeat_seconds
        announced = False
        while not lease.claim_driver(self.db, self.job_id, self.driver_id, stale_after=self.stale_after_seconds):
            if time.monotonic() > deadline:
                raise UsageError(
                    f"job {self.job_id} is being driven by another live process; "
                    f"follow it with farm status {self.job_id} --watch, or stop it with farm cancel {self.job_id}"
                )
            if not announced:
                message = "waiting for the previous driver's lease to lapse"
                self.observe(EngineEvent(EngineEventKind.MESSAGE, message=message))
                announced = True
            time.sleep(min(1.0, self.heartbeat_seconds))

    def _beat(self) -> None:
        while not self._stop.wait(self.heartbeat_seconds):
            try:
                lease.heartbeat(self.db, self.job_id, self.driver_id)
                renew_driven_claims(self.db, self.driver_id, lease_seconds=self.stale_after_seconds)
            except Exception:  # a database blip: the next beat tries again; the lease outlives a few misses
                log.warning("heartbeat of job %s failed", self.job_id, exc_info=True)
