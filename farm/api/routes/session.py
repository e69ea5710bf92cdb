"""The dashboard's sign-in: ``POST /api/session`` with a token sets the session cookie, ``DELETE`` clears it.

The cookie holds the token itself (HttpOnly, SameSite=Strict, Secure behind https), so revoking the token
signs the browser out too, and the server keeps no session state.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request, Response

from farm.api.auth import SESSION_COOKIE
from farm.api.context import FarmDep
from farm.api.errors import Unauthenticated
from farm.api.schemas import SignIn

router = APIRouter(tags=["session"])

SESSION_SECONDS = 12 * 3600
"""A working day and a night: a producer signs in once in the morning."""


@router.post("/api/session", summary="Sign the browser in with an API token (sets the session cookie)")
def sign_in(body: SignIn, request: Request, response: Response, farm: FarmDep) -> dict[str, Any]:
    identity = farm.verify_token(body.token.strip())
    if identity is None:
        raise Unauthenticated("that token is not valid (mistyped, or revoked); ask an admin for one", field="token")
    response.set_cookie(
        SESSION_COOKIE,
        body.token.strip(),
        max_age=SESSION_SECONDS,
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
        path="/",
    )
    return {"name": identity.name, "role": identity.role.value}


@router.delete("/api/session", summary="Sign the browser out")
def sign_out(response: Response) -> dict[str, Any]:
    response.delete_cookie(SESSION_COOKIE, path="/")
    return {"signed_out": True}
