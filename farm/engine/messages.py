"""The plain data that crosses the engine's boundaries: driver <-> worker, and driver -> its observer.

Nothing here does anything; these are the messages, so that the scheduler, the worker and whoever
watches a job (the CLI's progress display, a test) agree on one shape.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from farm.db.states import JobState

if TYPE_CHECKING:
    from farm.plan import ShotTask


@dataclass(frozen=True)
class RenderAssignment:
    """One attempt at one shot: the planned task plus what this attempt adds. Media travels separately,
    through Ray's object store."""

    render_id: int
    """The attempt's row id: the worker reports progress and hears of a cancel under it."""
    task: ShotTask
    params: Mapping[str, Any] = field(default_factory=dict)
    """The manifest's render parameters, with its low-memory overlay after an out-of-memory error."""
    log_path: str | None = None
    """Where the worker writes this attempt's output, warnings and traceback (None: nowhere)."""


@dataclass(frozen=True)
class RenderOutcome:
    """A finished attempt: where the artifacts are and what the render cost."""

    cache_key: str
    video_path: str
    video_bytes: int
    video_sha256: str
    last_frames_path: str
    last_frames_bytes: int
    last_frames_sha256: str
    frames: int
    duration: float
    worker: str
    model_seconds: float
    """Time spent inside the model's render call (the busy time of the slot)."""
    timings: Mapping[str, float] = field(default_factory=dict)
    """Seconds per stage (waiting for the slot, the model's own stages, finalising), recorded on the attempt."""
    warnings: tuple[str, ...] = ()
    levers: Mapping[str, str | int | float | bool] = field(default_factory=dict)
    """The levers the model reports it applied (``RenderResult.levers``), recorded on the attempt."""


@dataclass(frozen=True)
class WorkerIdentity:
    name: str
    node_id: str
    """Ray's id of the node: what blocklists and failure counts are keyed on."""
    node_ip: str
    device: str
    gpu_type: str = "cpu"
    """What the worker renders on, for the cost model: the CUDA device's name, ``FARM_GPU_TYPE`` where the
    node's environment names one (fake GPU nodes), or ``cpu``."""
    load_seconds: float = 0.0
    """How long the worker took to load its model."""

    @property
    def node_label(self) -> str:
        """For people: the node's address and the start of its Ray id (several nodes may share an address)."""
        return f"{self.node_ip}/{self.node_id[:8]}"


@dataclass(frozen=True)
class WorkerSnapshot:
    """One resident worker as the scheduler sees it now (``farm serve``'s /metrics)."""

    name: str
    model: str
    node: str | None
    """``ip/node-id``; None while the worker starts."""
    ready: bool
    busy: bool
    """At least one render in flight."""
    busy_seconds: float
    busy_fraction: float
    """Busy time over the time since the worker was created (model load included)."""
    renders_done: int


class EngineEventKind(enum.StrEnum):
    """What an EngineEvent reports."""

    JOB = "job"
    """The driver took the job: ``total`` shots, ``fraction`` of them done already."""
    STARTED = "started"
    PROGRESS = "progress"
    DONE = "done"
    CACHED = "cached"
    RETRY = "retry"
    FAILED = "failed"
    CANCELLED = "cancelled"
    MESSAGE = "message"
    """Something a person should read (a pause, a blocklisted node, assembling the edit)."""

    @property
    def ends_attempt(self) -> bool:
        """The event ends a shot's attempt (a retry ends the attempt, not the shot)."""
        return self in _ATTEMPT_ENDINGS


_ATTEMPT_ENDINGS = frozenset(
    {
        EngineEventKind.DONE,
        EngineEventKind.CACHED,
        EngineEventKind.FAILED,
        EngineEventKind.CANCELLED,
        EngineEventKind.RETRY,
    }
)


@dataclass(frozen=True)
class EngineEvent:
    """What the driver tells its observer."""

    kind: EngineEventKind
    shot_id: str = ""
    fraction: float = 0.0
    message: str = ""
    worker: str = ""
    total: int = 0
    """For ``job``: how many shots the job has."""


Observer = Callable[[EngineEvent], None]


def ignore_events(event: EngineEvent) -> None:
    """An observer that wants to hear nothing."""


@dataclass
class JobOutcome:
    """What one drive of a job came to: its state afterwards, and what happened to its shots."""

    job_id: int
    state: JobState
    done: int = 0
    cached: int = 0
    rendered: int = 0
    failed: int = 0
    cancelled: int = 0
    interrupted: bool = False
    wall_seconds: float = 0.0
    worker_busy_seconds: dict[str, float] = field(default_factory=dict)
    """Seconds each worker spent inside its model's render call."""
    worker_available_seconds: dict[str, float] = field(default_factory=dict)
    """Seconds from each worker being ready (model loaded) to the last shot finishing."""
    startup_seconds: float = 0.0
    """From the driver starting to the first worker ready (actors created, model loaded)."""
    steady_seconds: float = 0.0
    """From the first worker ready to the last shot finished."""

    @property
    def rendered_all(self) -> bool:
        """Every shot is done: the job moves on to its edit."""
        return self.state is JobState.ASSEMBLING

    @property
    def busy_fraction(self) -> float | None:
        """How much of the time its workers were available they spent rendering (start-up excluded)."""
        available = sum(self.worker_available_seconds.get(name, 0.0) for name in self.worker_busy_seconds)
        return sum(self.worker_busy_seconds.values()) / available if available > 0 else None
