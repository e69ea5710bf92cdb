"""API tokens: made here, shown once, and kept only as their SHA-256.

A token is 32 random bytes (``secrets.token_urlsafe``), so its plain SHA-256 is as good as a slow password
hash: nobody can guess their way back from the digest, and a copy of the database holds no usable token.
Looking a token up by its digest (a unique index) is also what makes verifying one a single indexed read.
A name is who the token speaks for (an editor's jobs are submitted under it), so at most one live token
has a given name; revoking it frees the name for a new one.
"""

from __future__ import annotations

import hashlib
import secrets

from sqlalchemy import insert, select, update

from farm.db.columns import utcnow
from farm.db.errors import TokenNameTaken, UnknownToken
from farm.db.kinds import Role
from farm.db.records import Identity, TokenInfo
from farm.db.retry import transaction
from farm.db.session import Database
from farm.db.tables import NAME, ApiToken
from farm.errors import InvalidValue

TOKEN_BYTES = 32


def token_digest(token: str) -> str:
    """The SHA-256 (hex) under which a token is stored and looked up."""
    return hashlib.sha256(token.encode()).hexdigest()


@transaction
def create_token(db: Database, name: str, role: Role | str) -> str:
    """A new token for ``name`` with ``role``; returns the token itself, which is stored nowhere.

    TokenNameTaken if ``name`` has a live token already (revoke it first to replace it).
    """
    name, role = _checked_name(name), _checked_role(role)
    token = secrets.token_urlsafe(TOKEN_BYTES)
    with db.write() as connection:
        live = select(ApiToken.c.id).where(ApiToken.c.name == name, ApiToken.c.revoked_at.is_(None))
        if connection.execute(live).first() is not None:
            raise TokenNameTaken(
                f"{name!r} already has a live token; revoke it first (farm token revoke {name}) or pick another name"
            )
        connection.execute(
            insert(ApiToken).values(name=name, role=role.value, token_sha256=token_digest(token), created_at=utcnow())
        )
    return token


@transaction
def verify_token(db: Database, token: str) -> Identity | None:
    """Who ``token`` speaks for, or None if it is not a live token (unknown, or revoked)."""
    if not token:
        return None
    with db.read() as connection:
        row = connection.execute(
            select(ApiToken.c.name, ApiToken.c.role).where(
                ApiToken.c.token_sha256 == token_digest(token), ApiToken.c.revoked_at.is_(None)
            )
        ).one_or_none()
    return None if row is None else Identity(row.name, Role(row.role))


@transaction
def revoke_token(db: Database, name: str) -> int:
    """Revoke ``name``'s live token (it stops working at once); returns how many were revoked."""
    with db.write() as connection:
        revoked = connection.execute(
            update(ApiToken).where(ApiToken.c.name == name, ApiToken.c.revoked_at.is_(None)).values(revoked_at=utcnow())
        ).rowcount
    if not revoked:
        raise UnknownToken(f"no live token is named {name!r}; `farm token list` shows the tokens")
    return revoked


@transaction
def list_tokens(db: Database) -> tuple[TokenInfo, ...]:
    """Every token ever made, live ones first, then by name (revoked ones stay listed, for the record)."""
    with db.read() as connection:
        rows = connection.execute(
            select(ApiToken.c.name, ApiToken.c.role, ApiToken.c.created_at, ApiToken.c.revoked_at).order_by(
                ApiToken.c.revoked_at.is_not(None), ApiToken.c.name, ApiToken.c.created_at
            )
        ).all()
    return tuple(TokenInfo(row.name, Role(row.role), row.created_at, row.revoked_at) for row in rows)


def _checked_name(name: str) -> str:
    name = name.strip()
    if not name or len(name) > NAME or any(character.isspace() for character in name):
        raise InvalidValue("name", f"a token's name is one word of 1-{NAME} characters (who it is for), not {name!r}")
    return name


def _checked_role(role: Role | str) -> Role:
    try:
        return Role(role)
    except ValueError:
        choices = ", ".join(member.value for member in Role)
        raise InvalidValue("role", f"unknown role {role!r}; a token's role is one of {choices}") from None
