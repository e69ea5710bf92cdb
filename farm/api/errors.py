"""Every error the API answers with, in one JSON shape, and the one table from farm's errors to HTTP statuses.

The shape is ``{"error": {"message", "field", "type", "status", ...}}``: ``message`` says what to do,
``field`` names the request's field at fault (a body key, a query parameter, a header) or is null; a
shot list's findings come as ``findings``, each located like a compiler's. FastAPI's own validation
errors and HTTP errors (an unknown route, a wrong method) are re-shaped into it too, so a client parses
one shape whatever went wrong.
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException

from farm.api.responses import FarmJSONResponse
from farm.errors import (
    EXIT_BAD_INPUT,
    BundleError,
    BundleTooLarge,
    FarmError,
    InvalidValue,
    ShotListError,
    UsageError,
)
from farm.jobs import (
    DatabaseMissing,
    DatabaseUnavailable,
    IdempotencyConflict,
    IllegalTransition,
    LostRace,
    SchemaVersionError,
    TokenNameTaken,
    UnknownFile,
    UnknownJob,
    UnknownShot,
    UnknownShow,
    UnknownToken,
)

log = logging.getLogger("farm.api")

STATUS_OF: tuple[tuple[type[FarmError], int], ...] = (
    (ShotListError, 422),
    (IdempotencyConflict, 422),
    (BundleTooLarge, 413),
    (BundleError, 422),
    (InvalidValue, 422),
    (UsageError, 422),
    (UnknownJob, 404),
    (UnknownShot, 404),
    (UnknownFile, 404),
    (UnknownShow, 404),
    (UnknownToken, 404),
    (IllegalTransition, 409),
    (LostRace, 409),
    (TokenNameTaken, 409),
    (DatabaseMissing, 503),
    (DatabaseUnavailable, 503),
    (SchemaVersionError, 503),
)
"""farm's errors and their statuses, the first match winning (a subclass before its base). Any other
FarmError is the client's fault (422) if it is bad input, else the farm's (500)."""

FIELD_OF: tuple[tuple[type[FarmError], str], ...] = (
    (IdempotencyConflict, "Idempotency-Key"),
    (BundleError, "bundle"),
    (UnknownShot, "shot"),
)


class ApiError(Exception):
    """An error only the HTTP layer knows (a missing token, a role that may not do this)."""

    status = 400

    def __init__(self, message: str, *, field: str | None = None, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field
        self.headers = headers or {}


class Unauthenticated(ApiError):
    status = 401


class Forbidden(ApiError):
    status = 403


def error_body(status: int, message: str, *, field: str | None, kind: str, **extra: Any) -> dict[str, Any]:
    return {"error": {"message": message, "field": field, "type": kind, "status": status, **extra}}


def status_of(error: FarmError) -> int:
    for kind, status in STATUS_OF:
        if isinstance(error, kind):
            return status
    return 422 if error.exit_code == EXIT_BAD_INPUT else 500


def farm_error_response(error: FarmError) -> FarmJSONResponse:
    status = status_of(error)
    field = getattr(error, "field", None) or next((name for kind, name in FIELD_OF if isinstance(error, kind)), None)
    extra: dict[str, Any] = {}
    if isinstance(error, ShotListError):
        extra["findings"] = [{**finding.to_json(), "text": finding.format()} for finding in error.findings]
    if isinstance(error, IdempotencyConflict):
        extra["job_id"] = error.job_id
    if status >= 500:
        log.error("farm error answered with %s: %s", status, error)
    return FarmJSONResponse(error_body(status, str(error), field=field, kind=type(error).__name__, **extra), status)


def validation_response(error: RequestValidationError) -> FarmJSONResponse:
    """FastAPI's validation errors, each naming the HTTP field at fault (``priority``, ``Idempotency-Key``)."""
    problems = [_problem(problem) for problem in error.errors()] or [{"field": None, "message": "invalid request"}]
    message = "; ".join(
        f"{problem['field']}: {problem['message']}" if problem["field"] else str(problem["message"])
        for problem in problems
    )
    body = error_body(422, message, field=problems[0]["field"], kind="RequestValidationError", errors=problems)
    return FarmJSONResponse(body, 422)


def _problem(problem: dict[str, Any]) -> dict[str, str | None]:
    # pydantic prefixes a validator's own ValueError with "Value error, "; the message is ours, so it goes.
    message = str(problem.get("msg", "")).removeprefix("Value error, ")
    return {"field": _field_name(problem.get("loc", ())), "message": message}


def _field_name(location: tuple[Any, ...] | list[Any]) -> str | None:
    """``("body", "priority")`` -> ``priority``; ``("header", "idempotency-key")`` -> ``Idempotency-Key``."""
    parts = list(location)
    if not parts:
        return None
    where, rest = parts[0], [str(part) for part in parts[1:]]
    if where == "header" and rest:
        return "-".join(word.capitalize() for word in rest[0].split("-"))
    if where == "body" and (not rest or rest[0].isdigit()):
        return "body"
    return ".".join(rest) or str(where)


def install_error_handlers(app: FastAPI) -> None:
    """Every error the app can raise, answered in the one shape."""

    @app.exception_handler(ApiError)
    async def api_error(request: Request, error: ApiError) -> FarmJSONResponse:
        body = error_body(error.status, error.message, field=error.field, kind=type(error).__name__)
        return FarmJSONResponse(body, error.status, headers=error.headers)

    @app.exception_handler(FarmError)
    async def farm_error(request: Request, error: FarmError) -> FarmJSONResponse:
        return farm_error_response(error)

    @app.exception_handler(RequestValidationError)
    async def invalid_request(request: Request, error: RequestValidationError) -> FarmJSONResponse:
        return validation_response(error)

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, error: HTTPException) -> FarmJSONResponse:
        message = str(error.detail)
        if error.status_code == 404:
            message = f"no such route {request.method} {request.url.path}; the API's routes are listed at /docs"
        elif error.status_code == 405:
            message = f"{request.method} is not allowed on {request.url.path}; /docs lists what is"
        body = error_body(error.status_code, message, field=None, kind="HTTPException")
        return FarmJSONResponse(body, error.status_code, headers=dict(error.headers or {}))

    @app.exception_handler(Exception)
    async def internal_error(request: Request, error: Exception) -> FarmJSONResponse:
        log.exception("internal error on %s %s", request.method, request.url.path)
        message = f"internal error: {type(error).__name__}: {error}; the farm manager's log has the traceback"
        return FarmJSONResponse(error_body(500, message, field=None, kind="InternalError"), 500)
