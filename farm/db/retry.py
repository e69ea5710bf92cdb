"""Riding out transient database faults: the one place that tells a blip from a real error, and retries.

A PostgreSQL failover, a restarted server or a pooler recycling its connections terminates every session
at once; a serialization failure or a deadlock aborts one transaction; an SQLite file stays locked past
its busy timeout while another process writes a big batch. None of these says anything about the work:
the same transaction run again a moment later succeeds. Everything else (a constraint violated, a wrong
URL, a lost race) is permanent and is raised at once.

A context manager cannot run its body twice, so the unit of retry is a function that opens one
transaction: the functions of ``farm.db`` that take the ``Database`` first are decorated with
``@transaction``, and the driver, the manager and the CLI reach the database only through them. The
whole function runs again, with a fresh connection from the pool. A retried transaction is safe because
every state change is a compare-and-set: a transition whose commit landed before its connection died
finds the row already moved on its second run and writes nothing. The few writers whose caller needs to
hear "done" in that case ask ``rerun_since()`` and recognise their own earlier commit.

The deadline belongs to the outage, not to one call: it runs from the first failure since the database
last answered, so a second call made after the first gave up (releasing the lease on the way out) gives
up at once instead of waiting the whole deadline again.
"""

from __future__ import annotations

import functools
import inspect
import logging
import random
import sqlite3
import sys
import threading
import time
from collections.abc import Callable
from contextvars import ContextVar
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Concatenate, ParamSpec, TypeVar

from sqlalchemy import exc as sa_exc

from farm import defaults
from farm.db.columns import utcnow
from farm.db.errors import DatabaseOutage

if TYPE_CHECKING:
    from farm.db.session import Database

log = logging.getLogger(__name__)

P = ParamSpec("P")
T = TypeVar("T")

TRANSIENT_SQLSTATES = frozenset({"40001", "40P01", "57P01", "57P02", "57P03", "53300", "53100"})
"""serialization_failure, deadlock_detected, admin_shutdown, crash_shutdown, cannot_connect_now (a server
starting or in recovery), too_many_connections, disk_full (the write succeeds once someone makes room); plus
the whole class 08 (connection exceptions)."""

_SQLITE_BUSY = ("database is locked", "database is busy", "database table is locked", "database or disk is full")
"""SQLite's words for a file another connection holds past the busy timeout, and for a full disk (SQLITE_FULL:
like a lock, it passes when the disk has room again)."""

NAMED_ARGUMENTS = ("job_id", "shot_pk", "render_id")
"""The arguments a give-up message names, so a person knows which job the failed operation was for."""


@dataclass(frozen=True)
class RetryPolicy:
    """How long and how often to retry: ``deadline_seconds`` of an outage (``database_retry_seconds``),
    waits doubling from ``first_wait_seconds`` up to ``longest_wait_seconds``, each scaled by a random
    factor in [0.5, 1] so that drivers knocked off together do not reconnect in lockstep."""

    deadline_seconds: float = defaults.DATABASE_RETRY_SECONDS
    first_wait_seconds: float = 0.05
    longest_wait_seconds: float = 5.0

    def wait_before(self, retry: int, left: float, rng: random.Random) -> float:
        """Seconds to wait before retry number ``retry`` (1, 2, ...), never past the deadline."""
        ceiling = min(self.longest_wait_seconds, self.first_wait_seconds * 2 ** (retry - 1))
        return max(0.0, min(left, ceiling * rng.uniform(0.5, 1.0)))


def is_transient(error: BaseException) -> bool:
    """Whether ``error`` is a fault of the connection or of the moment, which the same transaction run
    again can get past (see the module's docstring); False for everything else."""
    if isinstance(error, sa_exc.DBAPIError):
        return error.connection_invalidated or _transient_driver_error(error.orig)
    if isinstance(error, sa_exc.TimeoutError):  # no pooled connection came free in time: a storm of reconnects
        return True
    return _transient_driver_error(error)


def _transient_driver_error(error: BaseException | None) -> bool:
    if error is None:
        return False
    if isinstance(error, sqlite3.OperationalError):
        text = str(error).lower()
        return any(busy in text for busy in _SQLITE_BUSY)
    sqlstate = getattr(error, "sqlstate", None)
    if isinstance(sqlstate, str) and sqlstate:
        return sqlstate in TRANSIENT_SQLSTATES or sqlstate.startswith("08")
    # psycopg raises OperationalError with no SQLSTATE when the connection itself is lost, closed or refused
    # (it is imported by the engine that raised it, never here: farm.db does not require psycopg).
    psycopg = sys.modules.get("psycopg")
    return psycopg is not None and isinstance(error, psycopg.OperationalError)


@dataclass
class _Call:
    started_at: datetime
    retries: int = 0


_current: ContextVar[_Call | None] = ContextVar("farm_db_transaction", default=None)


def rerun_since() -> datetime | None:
    """When this call's first try began, if the transaction running now is a retry after a transient
    fault (whose earlier try may have committed before its connection died); None on a first try."""
    call = _current.get()
    return call.started_at if call is not None and call.retries > 0 else None


@dataclass
class Retrier:
    """A database's retry state: its policy, and since when it has been failing (the outage clock)."""

    policy: RetryPolicy = field(default_factory=RetryPolicy)
    failing_since: float | None = None
    """``time.monotonic()`` of the first transient failure since the database last answered."""
    _rng: random.Random = field(default_factory=random.Random, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def run(self, fn: Callable[..., T], db: Database, args: tuple[object, ...], kwargs: dict[str, object]) -> T:
        """``fn(db, *args, **kwargs)``, run again after each transient fault until the outage's deadline."""
        call = _Call(utcnow())
        token = _current.set(call)
        try:
            while True:
                try:
                    result = fn(db, *args, **kwargs)
                except Exception as error:
                    if not is_transient(error):
                        self.failing_since = None  # the database answered, if only to refuse
                        raise
                    self._wait_or_give_up(error, call, fn, db, args, kwargs)
                    call.retries += 1
                    continue
                self.failing_since = None
                return result
        finally:
            _current.reset(token)

    def _wait_or_give_up(
        self,
        error: Exception,
        call: _Call,
        fn: Callable[..., object],
        db: Database,
        args: tuple[object, ...],
        kwargs: dict[str, object],
    ) -> None:
        now = time.monotonic()
        with self._lock:
            if self.failing_since is None:
                self.failing_since = now
            since = self.failing_since
        left = self.policy.deadline_seconds - (now - since)
        if left <= 0:
            seconds, tries, deadline = now - since, call.retries + 1, self.policy.deadline_seconds
            message = _give_up_message(db, fn, args, kwargs, error, seconds=seconds, tries=tries, deadline=deadline)
            raise DatabaseOutage(message) from error
        wait = self.policy.wait_before(call.retries + 1, left, self._rng)
        log.warning(
            "database %s: %s failed (%s); retry %d in %.2f s (%.0f s of %.0f s left)",
            db.display_url, fn.__name__, _reason(error), call.retries + 1, wait, left, self.policy.deadline_seconds,
        )  # fmt: skip
        time.sleep(wait)


def transaction(fn: Callable[Concatenate[Database, P], T]) -> Callable[Concatenate[Database, P], T]:
    """Mark ``fn(db, ...)`` as one transaction that is retried whole after a transient fault.

    Inside another such call (one unit composed of several steps) it runs as it is: the outermost call
    is the one retried, since only it knows where the unit begins.
    """

    @functools.wraps(fn)
    def retried(db: Database, *args: P.args, **kwargs: P.kwargs) -> T:
        if _current.get() is not None:
            return fn(db, *args, **kwargs)
        return db.retrier.run(fn, db, args, kwargs)

    return retried


def _give_up_message(
    db: Database,
    fn: Callable[..., object],
    args: tuple[object, ...],
    kwargs: dict[str, object],
    error: BaseException,
    *,
    seconds: float,
    tries: int,
    deadline: float,
) -> str:
    named = _named_arguments(fn, db, args, kwargs)
    subject = ", ".join(f"{name} {value}" for name, value in named.items())
    job_id = named.get("job_id")
    resume = (
        f"farm render --resume {job_id}" if job_id is not None else "farm render --resume JOB (farm status lists it)"
    )
    return (
        f"database {db.display_url}: {fn.__name__}{f' ({subject})' if subject else ''} failed for {seconds:.0f} s "
        f"over {tries} tries: {_reason(error)}. farm rides out lost connections, a server restart or failover, "
        f"serialization failures, deadlocks, a locked SQLite file and a full disk for {deadline:.0f} s "
        "(database_retry_seconds in farm.toml, FARM_DATABASE_RETRY_SECONDS). Nothing half-done was recorded and "
        f"every finished shot is kept: once the database answers again, resume with {resume} "
        "(a farm manager picks its jobs up by itself)"
    )


def _named_arguments(
    fn: Callable[..., object], db: Database, args: tuple[object, ...], kwargs: dict[str, object]
) -> dict[str, object]:
    try:
        bound = inspect.signature(fn).bind_partial(db, *args, **kwargs).arguments
    except TypeError:
        return {}
    return {name: bound[name] for name in NAMED_ARGUMENTS if name in bound}


def _reason(error: BaseException) -> str:
    """The driver's first line (``AdminShutdown: terminating connection ...``), without SQLAlchemy's wrapper."""
    cause = error.orig if isinstance(error, sa_exc.DBAPIError) and error.orig is not None else error
    lines = str(cause).strip().splitlines()
    return f"{type(cause).__name__}: {lines[0] if lines else ''}".rstrip(": ")
