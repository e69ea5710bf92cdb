"""farm's public Python API: submit a shot list, render it to an edit, follow, cancel, retry and re-assemble it.

Everything the ``farm`` command does to a job, a pipeline TD can do from Python with the same names,
because the command is a thin shell over this package::

    from farm import jobs

    with jobs.open_farm(data_dir="/tmp/farm-demo") as farm:
        submission = farm.submit("shots/demo/episode.yaml")
        rendered = farm.render(submission.job_id)
        print(rendered.outcome.state, rendered.edit.verdict)

docs/python-api.md walks through it (its examples run in the test suite). The modules behind the face:
``submit`` (shot list -> queued job, once per idempotency key), ``bundle`` (a shot list's folder packed
and unpacked safely, for uploads), ``logs`` (attempts' captured output), ``run`` (drive a job under its
driver lease: render, edit, retakes), ``edit`` (a job's edit version), ``retake`` (re-key and re-queue
retaken shots), ``lease`` (the driver lease with its heartbeat), ``detach`` (hand a driver off to a
background process or Ray).
"""

from typing import TYPE_CHECKING, Any

from farm.db.errors import (
    DatabaseMissing,
    DatabaseUnavailable,
    IdempotencyConflict,
    SchemaVersionError,
    TokenNameTaken,
    UnknownFile,
    UnknownJob,
    UnknownShot,
    UnknownShow,
    UnknownToken,
)
from farm.db.kinds import Review, Role
from farm.db.producer import ProducerStatus, TrackerBucket
from farm.db.records import KEEP, Identity
from farm.db.states import FINISHED_JOB_STATES, IllegalTransition, JobState, LostRace, ShotState
from farm.verdicts import Verdict

if TYPE_CHECKING:
    from farm.catalog import Quality
    from farm.engine.messages import EngineEvent, EngineEventKind, JobOutcome
    from farm.engine.policy import EngineOptions
    from farm.jobs.farm import Farm, open_farm

# The heavier names load on first use (PEP 562): a read such as `farm status` should not pay for the
# catalog, the engine's vocabulary and the Farm facade before it needs them.
_LAZY = {
    "Quality": "farm.catalog",
    "EngineEvent": "farm.engine.messages",
    "EngineEventKind": "farm.engine.messages",
    "JobOutcome": "farm.engine.messages",
    "EngineOptions": "farm.engine.policy",
    "Farm": "farm.jobs.farm",
    "open_farm": "farm.jobs.farm",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'farm.jobs' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


__all__ = [
    "FINISHED_JOB_STATES",
    "KEEP",
    "DatabaseMissing",
    "DatabaseUnavailable",
    "EngineEvent",
    "EngineEventKind",
    "EngineOptions",
    "Farm",
    "IdempotencyConflict",
    "Identity",
    "IllegalTransition",
    "JobOutcome",
    "JobState",
    "LostRace",
    "ProducerStatus",
    "Quality",
    "Review",
    "Role",
    "SchemaVersionError",
    "ShotState",
    "TokenNameTaken",
    "TrackerBucket",
    "UnknownFile",
    "UnknownJob",
    "UnknownShot",
    "UnknownShow",
    "UnknownToken",
    "Verdict",
    "open_farm",
]
