"""Buyer bearer tokens: `<buyer_id>.<HMAC-SHA256(secret, buyer_id)>`.

Stateless, so every app server that shares the secret verifies every token without a database
round trip. Issuing a token per buyer is an admin action; rotating the secret revokes all.
"""

from __future__ import annotations

import base64
import hashlib
import hmac

from lastseat.domain.inventory import check_id

MIN_SECRET_BYTES = 16


class InvalidTokenError(Exception):
    """The bearer token is malformed or not signed with our secret."""


def _signature(secret: bytes, buyer_id: str) -> str:
    digest = hmac.new(secret, buyer_id.encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def issue_token(secret: bytes, buyer_id: str) -> str:
    """The bearer token of one buyer."""
    if len(secret) < MIN_SECRET_BYTES:
        raise ValueError(f"the token secret needs at least {MIN_SECRET_BYTES} bytes")
    return f"{check_id('buyer id', buyer_id)}.{_signature(secret, buyer_id)}"


def buyer_of(secret: bytes, token: str) -> str:
    """The buyer a token was issued to, or InvalidTokenError (constant-time comparison)."""
    buyer_id, _, signature = token.rpartition(".")
    expected = _signature(secret, buyer_id).encode()
    # Bytes, not str: compare_digest refuses non-ASCII str, and tokens come from strangers.
    if not buyer_id or not hmac.compare_digest(signature.encode(), expected):
        raise InvalidTokenError("invalid bearer token")
    return buyer_id
