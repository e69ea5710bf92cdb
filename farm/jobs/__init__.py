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

from farm.catalog import Quality
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
from farm.engine.messages import EngineEvent, EngineEventKind, JobOutcome
from farm.engine.policy import EngineOptions
from farm.jobs.farm import Farm, open_farm
from farm.verdicts import Verdict

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
