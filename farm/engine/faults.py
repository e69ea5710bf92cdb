"""What a failed attempt means, and what happens to the shot next.

Crashed is not failed: a lost node or worker says nothing about the shot, so it is retried elsewhere
without spending the shot's error budget; an out-of-memory error is retried with the model's low-memory
settings; a rejected input is failed at once; any other error is retried until the budget runs out.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from farm.errors import FarmError, OutOfMemoryError, RenderCancelled, RenderError, RetryableRenderError


class FailureKind(enum.StrEnum):
    CRASH = "crash"
    """The worker, its node or the object store went away; the shot itself is not to blame."""
    OUT_OF_MEMORY = "out_of_memory"
    ERROR = "error"
    """The model or the encoder raised: retried up to the attempt budget."""
    REJECTED = "rejected"
    """The inputs can never render (a non-retryable RenderError): fail without retrying."""
    CANCELLED = "cancelled"


@dataclass(frozen=True)
class Failure:
    kind: FailureKind
    error_class: str
    message: str


_CRASH_ERRORS = {
    "ActorDiedError",
    "ActorUnavailableError",
    "RayActorError",
    "WorkerCrashedError",
    "NodeDiedError",
    "ObjectLostError",
    "OwnerDiedError",
    "ObjectFetchTimedOutError",
    "ReferenceCountingAssertionError",
    "LocalRayletDiedError",
    "RaySystemError",
}


def classify_failure(exc: BaseException) -> Failure:
    """Map an exception from ``ray.get`` (or a worker) to a Failure."""
    cause = _unwrap(exc)
    name = type(cause).__name__
    message = _message(cause)
    if isinstance(cause, RenderCancelled):
        return Failure(FailureKind.CANCELLED, name, message)
    if isinstance(cause, OutOfMemoryError) or name == "OutOfMemoryError":
        return Failure(FailureKind.OUT_OF_MEMORY, name, message)
    if name in _CRASH_ERRORS or isinstance(cause, RetryableRenderError):
        return Failure(FailureKind.CRASH, name, message)
    if isinstance(cause, RenderError):
        return Failure(FailureKind.REJECTED, name, message)
    return Failure(FailureKind.ERROR, name, message)


def _unwrap(exc: BaseException) -> BaseException:
    """The worker's own exception inside Ray's RayTaskError wrapper, when it survived pickling."""
    cause = getattr(exc, "cause", None)
    if isinstance(cause, BaseException) and type(exc).__name__.startswith("RayTaskError"):
        return cause
    return exc


def _message(exc: BaseException) -> str:
    text = str(exc) if isinstance(exc, FarmError) else (str(exc).strip().splitlines() or [type(exc).__name__])[-1]
    return text[:2000]
