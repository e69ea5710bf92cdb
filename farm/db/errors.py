"""Errors the database layer reports to a person: each names the job, shot or database it concerns."""

from __future__ import annotations

from farm.errors import EXIT_BAD_INPUT, FarmError


class UnknownJob(FarmError):
    """A job id that is not in the database (a typo on the command line, or the wrong --db)."""

    exit_code = EXIT_BAD_INPUT


class UnknownShot(FarmError):
    """A shot (or render attempt) that is not in the database or not in the job named."""

    exit_code = EXIT_BAD_INPUT


class DatabaseUnavailable(FarmError):
    """The database cannot be opened: the server is down, the URL is wrong, or the file is not writable."""


class SchemaVersionError(FarmError):
    """The database's schema is not the one this farm expects (newer than the code, or not yet upgraded)."""


class DatabaseMissing(FarmError):
    """A read found no farm database where it looked (a mistyped --data-dir or --db, or nothing submitted yet).

    Reads never create a database, so a producer with a typo is told which database was read instead of
    "no jobs yet".
    """

    exit_code = EXIT_BAD_INPUT
