"""Who may do what: the admin key manages events and money, buyer tokens act for one buyer.

Missing or unknown credentials answer 401; a valid buyer token on an admin route answers 403.
Tokens are compared in constant time and never logged. A buyer token is verified once per
request: the Idempotency-Key middleware (which scopes keys per buyer) leaves what it found in
the request's scope, and the route's dependency reads it there.
"""

from __future__ import annotations

import hmac
from typing import Annotated

from fastapi import Depends, HTTPException, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from starlette.types import Scope

from lastseat.api.deps import settings as settings_of
from lastseat.api.settings import Settings
from lastseat.service.auth import InvalidTokenError, buyer_of

MAX_TOKEN_CHARS = 512
_VERIFIED_SCOPE_KEY = "lastseat.verified_token"  # (token, its buyer or None) of this request
_CHALLENGE = {"WWW-Authenticate": "Bearer"}

admin_scheme = HTTPBearer(
    auto_error=False, scheme_name="admin", description="The admin API key (LASTSEAT_ADMIN_KEY)."
)
buyer_scheme = HTTPBearer(
    auto_error=False, scheme_name="buyer", description="A buyer's token, issued by POST /buyers."
)
Credentials = HTTPAuthorizationCredentials | None


def _unauthorized(detail: str) -> HTTPException:
    return HTTPException(401, detail, headers=_CHALLENGE)


def buyer_for_token(settings: Settings, token: str) -> str | None:
    """The buyer a token was issued to, or None for anything else."""
    if len(token) > MAX_TOKEN_CHARS or not token.isascii():
        return None
    try:
        return buyer_of(settings.token_secret, token)
    except InvalidTokenError:
        return None


def verified_buyer(scope: Scope, settings: Settings, token: str) -> str | None:
    """`buyer_for_token`, verified once per request (remembered in the request's scope)."""
    found = scope.get(_VERIFIED_SCOPE_KEY)
    if isinstance(found, tuple) and found[0] == token:
        buyer: str | None = found[1]
        return buyer
    buyer = buyer_for_token(settings, token)
    scope[_VERIFIED_SCOPE_KEY] = (token, buyer)
    return buyer


def is_admin_key(settings: Settings, token: str) -> bool:
    """True if `token` is the admin key (constant-time comparison)."""
    return hmac.compare_digest(token.encode(), settings.admin_key.encode())


async def require_admin(
    request: Request, credentials: Annotated[Credentials, Depends(admin_scheme)]
) -> None:
    """Let only the admin key through."""
    if credentials is None:
        raise _unauthorized("this route needs the admin key as a bearer token")
    settings = settings_of(request)
    if is_admin_key(settings, credentials.credentials):
        return
    if buyer_for_token(settings, credentials.credentials) is not None:
        raise HTTPException(403, "buyers may not use this route")
    raise _unauthorized("invalid admin key")


async def current_buyer(
    request: Request, credentials: Annotated[Credentials, Depends(buyer_scheme)]
) -> str:
    """The buyer whose token authorised the request."""
    if credentials is None:
        raise _unauthorized("this route needs a buyer's bearer token")
    buyer_id = verified_buyer(request.scope, settings_of(request), credentials.credentials)
    if buyer_id is None:
        raise _unauthorized("invalid buyer token")
    return buyer_id


BuyerId = Annotated[str, Depends(current_buyer)]
