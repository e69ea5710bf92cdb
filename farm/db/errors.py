"""Errors the database layer reports to a person: each names the job, shot or database it concerns."""

from __future__ import annotations

from farm.errors import EXIT_BAD_INPUT, FarmError


class UnknownJob(FarmError):
    """A job id that is not in the database (a typo on the command line, or the wrong --db)."""

    exit_code = EXIT_BAD_INPUT


class UnknownShot(FarmError):
    """A shot (or render attempt) that is not in the database or not in the job named."""

    exit_code = EXIT_BAD_INPUT


class UnknownFile(FarmError):
    """A file of a job that does not exist (yet): a shot not rendered, an edit version or a name it lacks."""

    exit_code = EXIT_BAD_INPUT


class DatabaseUnavailable(FarmError):
    """The database cannot be opened: the server is down, the URL is wrong, or the file is not writable."""


class DatabaseOutage(DatabaseUnavailable):
    """The database kept failing with transient faults (lost connections, a failover, a locked SQLite file)
    past the retry deadline; the message names the database, the operation and its job, and how to resume.

    Nothing half-done stays: each operation is one transaction, so the job is left as its last committed
    transition says and a resumed driver (or the manager) carries on from there.
    """


class SchemaVersionError(FarmError):
    """The database's schema is not the one this farm expects (newer than the code, or not yet upgraded)."""


class DatabaseMissing(FarmError):
    """A read found no farm database where it looked (a mistyped --data-dir or --db, or nothing submitted yet).

    Reads never create a database, so a producer with a typo is told which database was read instead of
    "no jobs yet".
    """

    exit_code = EXIT_BAD_INPUT


class UnknownToken(FarmError):
    """An API token name that has no live token (a typo, or revoked already)."""

    exit_code = EXIT_BAD_INPUT


class TokenNameTaken(FarmError):
    """A live API token already has this name: a name is who the token speaks for, so it stays unique."""

    exit_code = EXIT_BAD_INPUT


class UnknownShow(FarmError):
    """A show that has neither settings nor jobs (a typo in the show's name, which is a shot list's project)."""

    exit_code = EXIT_BAD_INPUT


class IdempotencyConflict(FarmError):
    """An ``Idempotency-Key`` already used by this submitter for a different request.

    Answering with the first job would hide that the second request was never submitted; refusing tells the
    client to pick a new key for a new request.
    """

    exit_code = EXIT_BAD_INPUT

    def __init__(self, message: str, *, job_id: int) -> None:
        super().__init__(message)
        self.job_id = job_id


class IdempotencyKeyTaken(FarmError):
    """Two submits with one key raced and the other one recorded its job first (read it and answer with it)."""
