"""Request bodies: at most 64 KiB (checked before parsing) and JSON only."""

from __future__ import annotations

from email.message import Message

from fastapi import HTTPException, Request
from starlette.types import ASGIApp, Receive, Scope, Send
from starlette.types import Message as AsgiMessage

from lastseat.api.problems import problem_for_status, problem_response

MAX_BODY_BYTES = 64 * 1024


class BodyLimitMiddleware:
    """Refuse bodies over `max_bytes`: by Content-Length at once, or while streaming in."""

    def __init__(self, app: ASGIApp, max_bytes: int = MAX_BODY_BYTES) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Pass the request on, watching how many body bytes arrive."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope["headers"]).get(b"content-length", b"0")
        if not declared.isdigit() or int(declared) > self.max_bytes:
            detail = f"request bodies are limited to {self.max_bytes} bytes"
            await problem_response(problem_for_status(413), detail)(scope, receive, send)
            return
        received = 0

        async def counted() -> AsgiMessage:
            nonlocal received
            message = await receive()
            received += len(message.get("body", b""))
            if received > self.max_bytes:
                raise HTTPException(413, f"request bodies are limited to {self.max_bytes} bytes")
            return message

        await self.app(scope, counted, send)


async def require_json(request: Request) -> None:
    """Refuse a body route's request unless its Content-Type is JSON (415)."""
    header = request.headers.get("content-type")
    if header is not None:
        message = Message()
        message["content-type"] = header
        subtype = message.get_content_subtype()
        if message.get_content_maintype() == "application" and (
            subtype == "json" or subtype.endswith("+json")
        ):
            return
    raise HTTPException(415, "send the request body as application/json")
