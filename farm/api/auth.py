"""Who is calling, and whether their role may do what they ask: bearer tokens and the table of roles.

Every route but the health check needs ``Authorization: Bearer <token>`` (made with ``farm token create``).
What a role may do is one table, ``MAY``; an editor's changes are limited to the jobs it submitted (a
job's ``submitted_by`` is the token's name, since the API submits under it). A missing or unknown token
is 401 with a ``WWW-Authenticate`` challenge; a role that may not is 403, saying which role would.
"""

from __future__ import annotations

import enum
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from farm.api.context import FarmDep
from farm.api.errors import Forbidden, Unauthenticated
from farm.jobs import Farm, Identity, Role

REALM = 'Bearer realm="farm"'


class Action(enum.StrEnum):
    READ = "read"
    """Jobs, their shots, attempts, events, logs and edits; the shows."""
    SUBMIT = "submit"
    CHANGE_JOB = "change a job"
    """Cancel, retry, reprioritise."""
    REVIEW = "review an edit"
    """Approve a job's newest edit, or send shots back for retakes with a comment."""
    ADMINISTER = "administer"
    """Set a show's share, quota and budget."""


MAY: dict[Action, frozenset[Role]] = {
    Action.READ: frozenset(Role),
    Action.SUBMIT: frozenset({Role.EDITOR, Role.ADMIN}),
    Action.CHANGE_JOB: frozenset({Role.EDITOR, Role.ADMIN}),
    Action.REVIEW: frozenset({Role.PRODUCER, Role.ADMIN}),
    Action.ADMINISTER: frozenset({Role.ADMIN}),
}
OWN_JOBS_ONLY: frozenset[Role] = frozenset({Role.EDITOR})
"""Roles that may change a job only if they submitted it."""

bearer = HTTPBearer(
    auto_error=False,
    description="An API token from `farm token create NAME --role editor|producer|admin`.",
)


SESSION_COOKIE = "farm_session"
"""The dashboard's sign-in: the token in an HttpOnly, SameSite=Strict cookie, so the browser's own requests
(an event stream, a video, an image) carry it, and no script on the page can read it."""


def caller(
    request: Request,
    farm: FarmDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
) -> Identity:
    """The token's identity (from the Authorization header, else the dashboard's session cookie); 401 without
    a token or with one that is unknown or revoked."""
    if credentials is None and request.cookies.get(SESSION_COOKIE):
        credentials = HTTPAuthorizationCredentials(scheme="Bearer", credentials=request.cookies[SESSION_COOKIE])
    if credentials is None:
        raise Unauthenticated(
            "this route needs a token: send 'Authorization: Bearer <token>' (an admin makes one with "
            "`farm token create NAME --role editor`)",
            field="Authorization",
            headers={"WWW-Authenticate": REALM},
        )
    identity = farm.verify_token(credentials.credentials)
    if identity is None:
        raise Unauthenticated(
            "the token is not valid (mistyped, or revoked); ask an admin for a new one (`farm token create`)",
            field="Authorization",
            headers={"WWW-Authenticate": f'{REALM}, error="invalid_token"'},
        )
    return identity


def may(action: Action) -> object:
    """A route dependency: the caller, if their role may do ``action`` (else 403)."""

    def check(identity: Annotated[Identity, Depends(caller)]) -> Identity:
        require(identity, action)
        return identity

    return Depends(check)


def require(identity: Identity, action: Action, *, subject: str = "") -> None:
    allowed = MAY[action]
    if identity.role not in allowed:
        roles = " or ".join(sorted(role.value for role in allowed))
        what = subject or f"to {action}"
        raise Forbidden(f"{what} needs the {roles} role; the token of {identity.name} has the {identity.role} role")


def require_job_change(farm: Farm, identity: Identity, job_id: int, doing: str) -> None:
    """The caller may change job ``job_id``: an admin any, an editor its own (UnknownJob first, so an unknown
    job is 404 whoever asks)."""
    owner = farm.submitted_job(job_id).submitted_by
    require(identity, Action.CHANGE_JOB, subject=f"{doing} job {job_id}")
    if identity.role in OWN_JOBS_ONLY and owner != identity.name:
        raise Forbidden(
            f"{doing} job {job_id} needs the admin role, or the editor role as its submitter: job {job_id} is "
            f"{owner}'s and the token speaks for {identity.name} ({identity.role})"
        )


Reader = Annotated[Identity, may(Action.READ)]
Submitter = Annotated[Identity, may(Action.SUBMIT)]
JobChanger = Annotated[Identity, may(Action.CHANGE_JOB)]
Reviewer = Annotated[Identity, may(Action.REVIEW)]
Admin = Annotated[Identity, may(Action.ADMINISTER)]
