"""Attempt logs: what a render attempt's worker printed, read from the file the engine captured it in.

The engine writes each attempt's output (warnings, progress lines, a traceback) to a file and records its
path on the attempt (``renders.log_path``). This module reads those files for ``farm logs`` and the HTTP
API alike: the last ``max_bytes`` of a log by default (a long render's log can be large), or from a byte
offset, which is how a follower asks for only what was appended since it last looked. A log that was
never recorded, or whose file is gone, says so instead of reading as empty.
"""

from __future__ import annotations

import codecs
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from farm.db.records import AttemptRecord

if TYPE_CHECKING:
    from farm.db.session import Database

MAX_LOG_BYTES = 1 << 20
"""The most of a log one read returns (the end of it, unless an offset asks for a part)."""


@dataclass(frozen=True)
class LogText:
    """Part of a log file: the text read, the byte offsets it spans, whether earlier bytes were left out."""

    text: str
    offset: int
    next_offset: int
    """Where to read next for what is appended later (a split UTF-8 character waits for its end)."""
    truncated: bool


@dataclass(frozen=True)
class AttemptLog:
    """One attempt's log: which attempt, its state, where the log is, and its text (or why there is none)."""

    shot_id: str
    attempt_no: int
    state: str
    log_path: str | None
    text: str
    offset: int
    next_offset: int
    truncated: bool
    missing: str | None
    """Why there is no text: no log was recorded for the attempt, or its file is gone. None when read."""

    @property
    def running(self) -> bool:
        return self.state == "running"

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def attempt_logs(
    db: Database,
    job_id: int,
    *,
    shot_id: str | None = None,
    attempt_no: int | None = None,
    latest: bool = False,
    offset: int | None = None,
    max_bytes: int = MAX_LOG_BYTES,
) -> tuple[AttemptLog, ...]:
    """The logs of the job's attempts (of ``shot_id``, or only attempt ``attempt_no``); ``latest``: only
    the attempt that started last. ``offset``: read from that byte on instead of the log's end."""
    from farm.db.attempts import shot_attempts  # here, so a client rebuilding AttemptLogs loads no SQLAlchemy

    attempts = shot_attempts(db, job_id, shot_id=shot_id, attempt_no=attempt_no)
    if latest and attempts:
        attempts = (max(attempts, key=lambda attempt: (attempt.started_at, attempt.render_id)),)
    return tuple(_attempt_log(attempt, offset, max_bytes) for attempt in attempts)


def _attempt_log(attempt: AttemptRecord, offset: int | None, max_bytes: int) -> AttemptLog:
    missing = None
    part = LogText("", offset or 0, offset or 0, False)
    if attempt.log_path is None:
        missing = f"no log was recorded for attempt {attempt.attempt_no} of shot {attempt.shot_id}"
    else:
        try:
            part = read_log(Path(attempt.log_path), offset=offset, max_bytes=max_bytes)
        except FileNotFoundError:
            missing = f"the log file {attempt.log_path} is missing (moved or cleaned up since the attempt ran)"
    return AttemptLog(
        shot_id=attempt.shot_id,
        attempt_no=attempt.attempt_no,
        state=attempt.state,
        log_path=attempt.log_path,
        text=part.text,
        offset=part.offset,
        next_offset=part.next_offset,
        truncated=part.truncated,
        missing=missing,
    )


def read_log(path: Path, *, offset: int | None = None, max_bytes: int = MAX_LOG_BYTES) -> LogText:
    """Up to ``max_bytes`` of the log at ``path``: its end, or from byte ``offset`` on.

    Decoded as UTF-8 (undecodable bytes replaced); a character cut at the end is left for the next read.
    FileNotFoundError if there is no such file.
    """
    with path.open("rb") as file:
        size = file.seek(0, 2)
        start = max(size - max_bytes, 0) if offset is None else min(max(offset, 0), size)
        file.seek(start)
        data = file.read(max_bytes)
    truncated = offset is None and start > 0
    if truncated:
        whole_lines = _from_line_start(data)
        start, data = start + len(data) - len(whole_lines), whole_lines
    decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
    text = decoder.decode(data, final=False)
    pending = len(decoder.getstate()[0])
    return LogText(text, start, start + len(data) - pending, truncated)


def _from_line_start(data: bytes) -> bytes:
    """A log's tail from its first whole line (the cut fell mid-line), unless it is one long line."""
    newline = data.find(b"\n")
    return data[newline + 1 :] if 0 <= newline < len(data) - 1 else data
