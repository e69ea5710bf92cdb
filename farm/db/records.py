"""What the database layer hands to other layers: frozen dataclasses, never SQL rows.

A record is a snapshot taken in one read transaction; holding one keeps no connection or session open.
``to_json`` gives the shape ``farm status --json`` prints (timestamps as ISO 8601 UTC), for
``farm.cli.options.json_bytes``: plain data, or records whose fields are their JSON shape.
"""

from __future__ import annotations

import enum
import functools
import math
import types
import typing
from collections.abc import Callable, Iterable, Mapping
from dataclasses import asdict, dataclass, fields, is_dataclass
from datetime import datetime
from typing import Any, TypeVar

from farm.db.kinds import ArtifactKind, EventKind, Review, Role
from farm.db.producer import BUCKETS, ProducerStatus, TrackerBucket, producer_status
from farm.db.states import JobState, ShotState
from farm.errors import InvalidValue
from farm.verdicts import Verdict


def _json_value(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, tuple):
        return [_json_value(item) for item in value]
    if isinstance(value, dict):
        return {key: _json_value(item) for key, item in value.items()}
    return value


R = TypeVar("R")


def field_names(cls: type) -> tuple[str, ...]:
    return tuple(field.name for field in fields(cls))


def from_values(cls: type[R], names: tuple[str, ...], values: Iterable[Any]) -> R:
    """An instance of the frozen dataclass ``cls`` with ``names`` set to ``values``, built without its
    generated ``__init__``.

    A frozen dataclass's ``__init__`` sets every field through ``object.__setattr__``, several times slower
    than filling the instance's dict at once; the status read of a big job builds ten thousand rows. Only for
    frozen dataclasses without slots, ``__post_init__`` or computed defaults, with every field given.
    """
    record = object.__new__(cls)
    record.__dict__.update(zip(names, values))  # noqa: B905 - callers pass every field; strict= costs 1 us a row
    return record


class _JsonRecord:
    def to_json(self) -> dict[str, Any]:
        return {field.name: _json_value(getattr(self, field.name)) for field in fields(self)}  # type: ignore[arg-type]


@dataclass(frozen=True)
class ArtifactInfo(_JsonRecord):
    id: int
    cache_key: str
    kind: ArtifactKind
    path: str
    bytes: int
    sha256: str
    frames: int | None
    duration: float | None
    created_at: datetime


@dataclass(frozen=True)
class ShotCounts(_JsonRecord):
    """How many shots of a job (or scene) are in each state, and their frames."""

    total: int = 0
    queued: int = 0
    running: int = 0
    done: int = 0
    cached: int = 0
    failed: int = 0
    cancelled: int = 0
    frames_total: int = 0
    frames_done: int = 0

    @property
    def finished(self) -> int:
        return self.done + self.failed + self.cancelled

    @property
    def fraction_done(self) -> float:
        """Progress by frames (a 10-second shot weighs more than a 1-second one)."""
        if self.frames_total:
            return self.frames_done / self.frames_total
        return self.done / self.total if self.total else 0.0


@dataclass(frozen=True)
class JobSummary(_JsonRecord):
    id: int
    project: str
    episode: str
    shot_list_path: str
    quality: str
    priority: int
    state: JobState
    submitted_by: str
    submitted_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    driver_id: str | None
    driver_heartbeat_at: datetime | None
    shots: ShotCounts
    gpu_seconds: float
    render_seconds: float
    """Wall time of the attempts that rendered the job's done shots (cache hits take none)."""
    frames_per_second: float | None
    """Observed speed of one worker: frames of the rendered shots / their render time."""
    eta_seconds: float | None
    """Remaining frames / speed / running attempts; None until an attempt has succeeded, 0 when finished."""
    edit_version: int | None = None
    """The newest edit's version; None before the first assembly."""
    edit_verdict: Verdict | None = None
    """The newest edit's continuity verdict: a job can be ``done`` with an edit that failed QC."""
    edit_review: Review | None = None
    """A producer's review of the newest edit, if any."""

    @property
    def gpu_hours(self) -> float:
        return self.gpu_seconds / 3600.0

    @property
    def producer_status(self) -> ProducerStatus:
        return producer_status(self.state, self.edit_verdict, self.edit_review)

    @property
    def tracker_bucket(self) -> TrackerBucket:
        return BUCKETS[self.producer_status]

    def to_json(self) -> dict[str, Any]:
        payload = super().to_json()
        payload["shots"] = {**asdict(self.shots), "fraction_done": round(self.shots.fraction_done, 6)}
        payload["gpu_hours"] = round(self.gpu_hours, 6)
        payload["producer_status"] = self.producer_status.value
        payload["tracker_bucket"] = self.tracker_bucket.value
        return payload


@dataclass(frozen=True)
class ShotRow(_JsonRecord):
    """One line of ``farm status JOB``: a shot and its current (or last) attempt. Its fields, in this
    order, are its object in ``farm status JOB --json``."""

    pk: int
    shot_id: str
    scene_id: str
    edit_order: int
    state: ShotState
    cached: bool
    attempts: int
    frames: int
    cache_key: str
    gpu_seconds: float
    last_error: str | None
    render_id: int | None
    attempt_state: str | None
    worker: str | None
    node: str | None
    device: str | None
    started_at: datetime | None
    finished_at: datetime | None
    duration_seconds: float | None
    """The current attempt's render time so far, or the last attempt's."""
    progress: float | None
    phase: str | None
    artifact_id: int | None
    artifact_path: str | None
    timings: dict[str, float] | None
    """Seconds per stage of the current (or last) attempt, as its worker measured them."""
    log_path: str | None
    """The current (or last) attempt's log: what its worker printed, warned and raised (``farm logs``)."""
    retake_reason: str | None = None
    """Why a continuity retake gave the shot its current recipe; None for the shot list's own."""


@dataclass(frozen=True)
class SceneRollup(_JsonRecord):
    scene_id: str
    shots: ShotCounts
    gpu_seconds: float

    def to_json(self) -> dict[str, Any]:
        return {
            "scene_id": self.scene_id,
            "shots": {**asdict(self.shots), "fraction_done": round(self.shots.fraction_done, 6)},
            "gpu_seconds": self.gpu_seconds,
        }


@dataclass(frozen=True)
class EditInfo(_JsonRecord):
    id: int
    job_id: int
    version: int
    video_path: str
    otio_path: str | None
    report_path: str | None
    verdict: Verdict
    summary: dict[str, Any]
    created_at: datetime
    review: Review | None = None
    review_comment: str | None = None
    reviewed_by: str | None = None
    reviewed_at: datetime | None = None
    content_key: str | None = None
    reused_from_id: int | None = None
    """The edit (of this job or another) whose files this version re-uses; None when it was assembled."""


@dataclass(frozen=True)
class JobDetail:
    job: JobSummary
    scenes: tuple[SceneRollup, ...]
    """In edit order (the order of each scene's first shot)."""
    shots: tuple[ShotRow, ...]
    """Every shot in edit order, or only those in ``shot_states``."""
    failures: tuple[ShotRow, ...]
    """The failed shots, always, whatever ``shots`` holds."""
    shot_states: frozenset[ShotState] | None
    """The states ``shots`` was limited to; None when it holds every shot."""
    latest_edit: EditInfo | None
    as_of: datetime

    def to_json(self) -> dict[str, Any]:
        return {
            "as_of": self.as_of.isoformat(),
            "job": self.job.to_json(),
            "scenes": [scene.to_json() for scene in self.scenes],
            "shot_states": sorted(self.shot_states) if self.shot_states is not None else None,
            # The rows themselves: a ShotRow's fields are its JSON shape, and farm's JSON writer (orjson) writes
            # dataclasses natively, 10,000 rows in ~15 ms instead of ~80 ms building a dict per row first.
            "shots": list(self.shots),
            "failures": [shot.shot_id for shot in self.failures],
            "latest_edit": self.latest_edit.to_json() if self.latest_edit else None,
        }


@dataclass(frozen=True)
class ShotRecord:
    """What the scheduler needs to know about a shot to dispatch it."""

    pk: int
    shot_id: str
    scene_id: str
    edit_order: int
    state: ShotState
    cached: bool
    cache_key: str
    frames: int
    spec: dict[str, Any]
    attempts: int
    current_render_id: int | None
    artifact_id: int | None


@dataclass(frozen=True)
class EventRecord(_JsonRecord):
    id: int
    at: datetime
    changed_by: str
    kind: EventKind
    job_id: int | None
    shot_pk: int | None
    shot_id: str | None
    render_id: int | None
    attempt_no: int | None
    old_state: str | None
    new_state: str | None
    message: str
    data: dict[str, Any] | None


@dataclass(frozen=True)
class EventPage:
    """The job's events after an event id, and the job's state in the same snapshot: a follower that sees
    a finished job and no events left knows nothing more will come."""

    events: tuple[EventRecord, ...]
    job_state: JobState


@dataclass(frozen=True)
class AttemptRecord(_JsonRecord):
    """One render attempt of a shot, as ``farm logs`` and the API's attempts list show it."""

    shot_id: str
    render_id: int
    attempt_no: int
    state: str
    worker: str
    node: str
    device: str
    started_at: datetime
    finished_at: datetime | None
    progress: float
    phase: str | None
    error_class: str | None
    error_message: str | None
    gpu_seconds: float
    warnings: tuple[str, ...] | None
    timings: dict[str, float] | None
    log_path: str | None


@dataclass(frozen=True)
class ShowInfo(_JsonRecord):
    """A show (a shot list's ``project``): what the manager gives it, and the GPU time its jobs have spent.

    A show nobody configured still appears once it has jobs, with the defaults (``configured`` False).
    """

    name: str
    share: float
    gpu_quota: int | None
    gpu_hour_budget: float | None
    gpu_hours_used: float
    jobs: int
    configured: bool
    updated_at: datetime | None

    @property
    def gpu_hours_left(self) -> float | None:
        """What is left of the budget (never below 0); None without a budget."""
        if self.gpu_hour_budget is None:
            return None
        return max(self.gpu_hour_budget - self.gpu_hours_used, 0.0)

    def to_json(self) -> dict[str, Any]:
        return {**super().to_json(), "gpu_hours_left": self.gpu_hours_left}


class Keep(enum.Enum):
    """A show setting left as it is (distinct from None, which clears a quota or a budget)."""

    KEEP = "keep"


KEEP = Keep.KEEP


@dataclass(frozen=True)
class ShowChange:
    """What to change of a show; a field left at KEEP stays as it is, None clears a quota or a budget."""

    share: float | Keep = KEEP
    gpu_quota: int | Keep | None = KEEP
    gpu_hour_budget: float | Keep | None = KEEP

    def changes(self) -> dict[str, Any]:
        """The settings to write, checked: a positive share, a quota of 0 GPUs or more, a budget of 0 hours
        or more (a quota of 0 or a spent budget holds the show's jobs)."""
        wanted = {
            field.name: getattr(self, field.name) for field in fields(self) if getattr(self, field.name) is not KEEP
        }
        share = wanted.get("share")
        if "share" in wanted and (share is None or not math.isfinite(share) or share <= 0):
            raise InvalidValue("share", f"a show's share is a weight above 0 (1 is an equal share), not {share}")
        quota = wanted.get("gpu_quota")
        if quota is not None and (isinstance(quota, bool) or not isinstance(quota, int) or quota < 0):
            raise InvalidValue("gpu_quota", f"a GPU quota is a whole number of GPUs, 0 or more, not {quota}")
        budget = wanted.get("gpu_hour_budget")
        if budget is not None and (not math.isfinite(budget) or budget < 0):
            raise InvalidValue("gpu_hour_budget", f"a GPU-hour budget is 0 hours or more, not {budget}")
        return wanted


@dataclass(frozen=True)
class Identity:
    """Who an API token speaks for, and with which role."""

    name: str
    role: Role


@dataclass(frozen=True)
class TokenInfo(_JsonRecord):
    """An API token as listed (never the token itself: only its digest is stored)."""

    name: str
    role: Role
    created_at: datetime
    revoked_at: datetime | None

    @property
    def live(self) -> bool:
        return self.revoked_at is None


def record_from_json(cls: type[R], payload: Mapping[str, Any]) -> R:
    """The frozen dataclass ``cls`` rebuilt from its ``to_json`` shape (what the HTTP API sends), each field
    converted back by its annotation: ISO 8601 text to datetimes, values to enums, objects to records.

    Keys ``cls`` does not have are ignored (a newer server may send more), missing ones are None.
    """
    values = {}
    for name, convert in _field_converters(cls):
        value = payload.get(name)
        values[name] = None if value is None else convert(value)
    return cls(**values)


@functools.cache
def _field_converters(cls: type) -> tuple[tuple[str, Callable[[Any], Any]], ...]:
    """Each field of ``cls`` with the function that converts its JSON value back, worked out from the
    annotations once per class: ``typing.get_type_hints`` evaluates every annotation's text each call,
    which made a client's 10,000-shot status take seconds."""
    hints = typing.get_type_hints(cls)
    return tuple((field.name, _converter(hints[field.name])) for field in fields(cls))


def _converter(hint: Any) -> Callable[[Any], Any]:
    origin, arguments = typing.get_origin(hint), typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        hint = next(argument for argument in arguments if argument is not type(None))
        origin, arguments = typing.get_origin(hint), typing.get_args(hint)
    if origin in (tuple, frozenset):
        container, item = origin, _converter(arguments[0])
        return lambda value: container(None if entry is None else item(entry) for entry in value)
    if origin is not None:
        return _unchanged
    if hint is datetime:
        return datetime.fromisoformat
    if isinstance(hint, type) and issubclass(hint, enum.Enum):
        return hint
    if isinstance(hint, type) and is_dataclass(hint):
        return functools.partial(record_from_json, hint)
    if hint is float:
        return float
    return _unchanged


def _unchanged(value: Any) -> Any:
    return value


def job_detail_from_json(payload: Mapping[str, Any]) -> JobDetail:
    """A JobDetail from the HTTP API's job view (``JobDetail.to_json`` plus ``failed_shots``, the failed
    shots' rows, which the status page lists even when ``shots`` holds only the running ones)."""
    shots = tuple(record_from_json(ShotRow, row) for row in payload.get("shots") or ())
    failed = payload.get("failed_shots")
    failures = (
        tuple(record_from_json(ShotRow, row) for row in failed)
        if failed is not None
        else tuple(shot for shot in shots if shot.state is ShotState.FAILED)
    )
    states = payload.get("shot_states")
    edit = payload.get("latest_edit")
    return JobDetail(
        job=record_from_json(JobSummary, payload["job"]),
        scenes=tuple(record_from_json(SceneRollup, scene) for scene in payload.get("scenes") or ()),
        shots=shots,
        failures=failures,
        shot_states=frozenset(ShotState(state) for state in states) if states is not None else None,
        latest_edit=record_from_json(EditInfo, edit) if edit else None,
        as_of=datetime.fromisoformat(payload["as_of"]),
    )
