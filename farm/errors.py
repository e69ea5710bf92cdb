"""One exception hierarchy for everything farm reports to a person.

Each class says which exit status it maps to and whether a render that hit it may be retried, so the
CLI and the scheduler never compare exception types or message strings.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

EXIT_OK = 0
EXIT_WORK_FAILED = 1
EXIT_BAD_INPUT = 2


class FarmError(Exception):
    """Base of every error farm raises on purpose."""

    exit_code: int = EXIT_WORK_FAILED
    retryable: bool = False


class UsageError(FarmError):
    """The command line or the configuration asks for something impossible."""

    exit_code = EXIT_BAD_INPUT


@dataclass(frozen=True)
class Finding:
    """One located problem in a user's file, printed like a compiler diagnostic."""

    file: str
    line: int
    column: int
    field: str
    message: str
    hint: str = ""
    shot: str | None = None
    severity: str = "error"

    def format(self) -> str:
        where = f"{self.file}:{self.line}:{self.column}"
        subject = f" shot {self.shot}:" if self.shot else ""
        field_part = f" {self.field}:" if self.field else ""
        text = f"{where}:{subject}{field_part} {self.message}"
        if self.hint:
            text += f"; {self.hint}"
        if self.severity != "error":
            text += f" [{self.severity}]"
        return text

    def to_json(self) -> dict[str, object]:
        return {
            "file": self.file,
            "line": self.line,
            "column": self.column,
            "shot": self.shot,
            "field": self.field,
            "severity": self.severity,
            "message": self.message,
            "hint": self.hint,
        }


@dataclass
class ShotListError(FarmError):
    """A shot list (or a file it names) is invalid; carries every finding, not just the first."""

    findings: Sequence[Finding] = field(default_factory=list)
    exit_code = EXIT_BAD_INPUT

    def __post_init__(self) -> None:
        super().__init__(self.__str__())

    def __str__(self) -> str:
        errors = [f for f in self.findings if f.severity == "error"]
        return "\n".join(f.format() for f in errors) or "invalid shot list"


class ManifestError(FarmError):
    """A model manifest in models/ is missing or malformed."""

    exit_code = EXIT_BAD_INPUT


class MediaError(FarmError):
    """A media file cannot be read, decoded or written."""


class RenderError(FarmError):
    """A shot failed to render because of its inputs or the model: retrying the same request won't help."""


class RenderCancelled(FarmError):
    """A render stopped because its job was cancelled or the driver is shutting down."""


class RetryableRenderError(RenderError):
    """A render failed for a reason outside the shot (lost node, crashed worker): try again elsewhere."""

    retryable = True


class OutOfMemoryError(RetryableRenderError):
    """The device ran out of memory; retry with the manifest's low-memory settings."""


class StorageFull(FarmError):
    """A disk farm writes to has no space left: nobody's fault but the storage's. A render or an assembly
    that hits it is retried once space is freed, spending no shot's budget and blaming no node."""

    def __init__(self, message: str, path: str = "", needed: int = 0) -> None:
        super().__init__(message)
        self.path = path
        """The folder that filled up (the artifact store, an edit's folder), as the writer saw it."""
        self.needed = needed
        """Bytes the writer needs free there to try again (0: not known; the waiter estimates)."""

    def __reduce__(self) -> tuple[type[StorageFull], tuple[str, str, int]]:
        return (StorageFull, (str(self), self.path, self.needed))  # crosses Ray from a worker intact


class InvalidValue(UsageError):
    """A value a person gave is out of range; ``field`` names it (the HTTP API points a form at it)."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


class BundleError(FarmError):
    """An uploaded bundle (a shot list and its media, as tar.gz or zip) cannot be unpacked safely."""

    exit_code = EXIT_BAD_INPUT


class BundleTooLarge(BundleError):
    """An uploaded bundle, or what it unpacks to, is over the size the farm accepts."""


@dataclass(frozen=True)
class ClipFinding:
    """One problem of a re-cut timeline, located twice: at the clip in the timeline and at the shot in the
    shot list, because the editor fixes the first and the TD reads the second."""

    timeline: str
    clip: str
    """The clip as the editor sees it: ``V1 clip 3 'sc01_020' at 01:00:04:10``."""
    message: str
    hint: str = ""
    shot: str | None = None
    shot_list: str = ""
    """``file:line`` of the shot in the shot list, when the clip maps to one."""

    def format(self) -> str:
        where = f"{self.timeline}: {self.clip}"
        if self.shot:
            where += f": shot {self.shot}" + (f" ({self.shot_list})" if self.shot_list else "")
        text = f"{where}: {self.message}"
        return f"{text}; {self.hint}" if self.hint else text

    def to_json(self) -> dict[str, object]:
        return {
            "timeline": self.timeline,
            "clip": self.clip,
            "shot": self.shot,
            "shot_list": self.shot_list,
            "message": self.message,
            "hint": self.hint,
        }


@dataclass
class ConformError(FarmError):
    """A re-cut timeline cannot be conformed to its shot list; carries every problem found, and nothing
    was written."""

    findings: Sequence[ClipFinding] = field(default_factory=list)
    exit_code = EXIT_BAD_INPUT

    def __post_init__(self) -> None:
        super().__init__(self.__str__())

    def __str__(self) -> str:
        return "\n".join(finding.format() for finding in self.findings) or "the timeline cannot be conformed"


class MissingExtra(UsageError):
    """A command needs a part of farm that this installation lacks: the light install has no render side.

    Raised before the command changes anything, so that the fix (installing the extra) is all there is to do.
    """

    def __init__(self, command: str, missing: Sequence[str], install: str) -> None:
        self.command = command
        self.missing = tuple(missing)
        super().__init__(
            f"{command} needs farm's render side, which this installation lacks (no module "
            f"{', '.join(repr(name) for name in self.missing)}); install it with: {install}"
        )
