"""What a failed attempt means: foreign errors mapped to farm's at the boundary, then classified.

Crashed is not failed: a lost node or worker says nothing about the shot, so it is retried elsewhere
without spending the shot's error budget; an out-of-memory error is retried with the model's low-memory
settings; a rejected input is failed at once; any other error is retried until the budget runs out.

Two steps, each in one place. On the worker, ``as_farm_error`` turns what a model raised into farm's
errors (a CUDA out-of-memory becomes ``OutOfMemoryError``), keeping the original as ``__cause__``. On the
driver, ``classify_failure`` reads what an error says of itself (its class and ``retryable``) and what
Ray's own exceptions mean; it never compares class names.
"""

from __future__ import annotations

import sys
from pathlib import Path

import ray.exceptions

from farm.engine.policy import Failure, FailureKind
from farm.errors import FarmError, OutOfMemoryError, RenderCancelled, RenderError, StorageFull
from farm.storage import out_of_space, storage_full

_RAY_CRASHES: tuple[type[BaseException], ...] = (
    ray.exceptions.RayActorError,
    ray.exceptions.WorkerCrashedError,
    ray.exceptions.NodeDiedError,
    ray.exceptions.ObjectLostError,
    ray.exceptions.LocalRayletDiedError,
    ray.exceptions.RaySystemError,
)
"""Ray's ways of saying the infrastructure went away (an actor, its worker process or node, an object)."""

_RAY_OUT_OF_MEMORY: tuple[type[BaseException], ...] = (ray.exceptions.OutOfMemoryError,)
"""Ray's memory monitor killed the worker: the node ran out of host memory."""


def as_farm_error(exc: Exception, subject: str = "", *, storage: Path | None = None) -> Exception:
    """What a model or encoder raised, as one of farm's errors where farm knows what it means.

    A full disk under ``storage`` (the artifact store) becomes ``StorageFull``, whatever shape it came in
    (an ffmpeg child's log, an OSError): the exception's cause chain does not survive the trip to the
    driver, so it is read here. A device out-of-memory error (torch's ``OutOfMemoryError``, or any error
    whose message says so, as CUDA and other backends' runtime errors do) becomes ``OutOfMemoryError``,
    its message naming ``subject`` (``shot sc01_010``, say); anything else is left alone.
    """
    if storage is not None and not isinstance(exc, StorageFull) and out_of_space(exc):
        return storage_full(subject or "a render", storage, exc)
    if isinstance(exc, FarmError):
        return exc
    if _is_device_out_of_memory(exc):
        first_line = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        where = f"{subject}: " if subject else ""
        error = OutOfMemoryError(
            f"{where}out of device memory ({type(exc).__name__}: {first_line}); retrying with the manifest's "
            "low_memory settings"
        )
        error.__cause__ = exc
        return error
    return exc


def _is_device_out_of_memory(exc: Exception) -> bool:
    torch = sys.modules.get("torch")  # a model that raised torch's error has imported torch already
    if torch is not None and isinstance(exc, torch.OutOfMemoryError):
        return True
    return "out of memory" in str(exc).lower()


def classify_failure(exc: BaseException) -> Failure:
    """Map an exception from ``ray.get`` (or a worker) to a Failure."""
    cause = _unwrap(exc)
    name = type(cause).__name__
    message = _message(cause)
    if isinstance(cause, RenderCancelled):
        return Failure(FailureKind.CANCELLED, name, message)
    if isinstance(cause, StorageFull) or out_of_space(cause):
        return Failure(FailureKind.STORAGE, name, message, path=getattr(cause, "path", ""))
    if isinstance(cause, (OutOfMemoryError, *_RAY_OUT_OF_MEMORY)):
        return Failure(FailureKind.OUT_OF_MEMORY, name, message)
    if isinstance(cause, _RAY_CRASHES) or (isinstance(cause, FarmError) and cause.retryable):
        return Failure(FailureKind.CRASH, name, message)
    if isinstance(cause, RenderError):
        return Failure(FailureKind.REJECTED, name, message)
    return Failure(FailureKind.ERROR, name, message)


def _unwrap(exc: BaseException) -> BaseException:
    """The worker's own exception inside Ray's RayTaskError wrapper, when it survived pickling."""
    if isinstance(exc, ray.exceptions.RayTaskError) and isinstance(exc.cause, BaseException):
        return exc.cause
    return exc


def _message(exc: BaseException) -> str:
    text = str(exc) if isinstance(exc, FarmError) else (str(exc).strip().splitlines() or [type(exc).__name__])[-1]
    return text[:2000]
