"""Idempotency-Key over HTTP: every mutating route needs one; a retry replays the answer.

A pure ASGI middleware wraps the routes (inside the body limit): for a POST / PUT / PATCH /
DELETE that a route serves, and a caller the credentials identify, it reads the key and the
whole body, then asks the service (lastseat.service.idempotency, whose note draws the
interleavings) what to do::

    no record, or a dead attempt's lease ended -> run the route under a RequestFence, keep the
                                                  lease renewed, buffer the answer, then store
                                                  it (final) or release the key (not final) -
                                                  unless the route's use case stored it with
                                                  its own commit (`answer_with`, below)
    same key, still running                    -> 409 request-in-progress + Retry-After
    same key, finished                         -> the stored status, Location, Content-Type
                                                  and body, with Idempotent-Replayed: true
    same key, other body                       -> 422 idempotency-key-reused
    no key, or a malformed one                 -> 400 idempotency-key-missing

On PostgreSQL the question is one statement on the event loop (`app.state.request_begins`);
only a takeover, and SQLite, ask the store in a worker thread.

Requests without usable credentials pass through untouched (the route answers 401 / 403), as
do reads, which keep streaming. Routes get their request's fence from the `Fence` dependency
and derive the ids they create from it (`fence.derived_id("ord")`) and pass it to the service
so its writes check it (`tx.check_request_fence(fence)`).

A route whose answer is a function of its use case's result (a purchase: 201, its Location,
its body) says so with `answer_with(fence, present)` before calling the use case: the use case
then stores that answer in its own transaction (no window between the sale and its answer, no
second commit), the route sends the very bytes stored (`stored_answer`), and the middleware
stores nothing more. Any other answer (a 4xx, a resumed attempt's) is stored here as before.
"""

from __future__ import annotations

import json
import logging
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import timedelta
from typing import Annotated, Any, TypeVar

import anyio
from fastapi import Depends, FastAPI, Request
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import Headers
from starlette.exceptions import HTTPException
from starlette.responses import Response
from starlette.routing import Match
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from lastseat.api.auth import is_admin_key, verified_buyer
from lastseat.api.problems import (
    PROBLEM_MEDIA_TYPE,
    error_response,
    problem_for_error,
    problem_for_status,
    problem_response,
    problem_responses,
)
from lastseat.api.route_table import route_table_of
from lastseat.api.settings import Settings
from lastseat.bootstrap import Services
from lastseat.domain.errors import (
    IdempotencyKeyMissingError,
    LastseatError,
    RequestInProgressError,
)
from lastseat.service.idempotency import (
    AnswerSlot,
    IdempotencyService,
    InProgress,
    Replay,
    RequestFence,
    RequestKey,
    StoredResponse,
    fingerprint,
)

HEADER = "Idempotency-Key"
REPLAYED_HEADER = "Idempotent-Replayed"
MUTATING_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
ADMIN_PRINCIPAL = "admin"
FENCE_SCOPE_KEY = "lastseat.request_fence"
REAP_INTERVAL_S = 60.0
# 1..255 printable ASCII characters, no surrounding spaces (HTTP would strip them anyway).
KEY_PATTERN = r"^[!-~]([ -~]{0,253}[!-~])?$"
_KEY = re.compile(KEY_PATTERN)
_REPLAYED_HEADERS = frozenset({"location", "content-type"})
_CONFLICT_TYPE = problem_for_status(409).uri  # transient: ConflictError and its subclasses
logger = logging.getLogger("lastseat.api")
T = TypeVar("T")


async def request_fence(request: Request) -> RequestFence | None:
    """The fence of the Idempotency-Key record this request runs under (None outside one)."""
    found = request.scope.get(FENCE_SCOPE_KEY)
    return found if isinstance(found, RequestFence) else None


# What a mutating route declares to get its request's fence: `fence: Fence`.
Fence = Annotated[RequestFence | None, Depends(request_fence)]


def answer_with(
    fence: RequestFence | None, present: Callable[[Any], StoredResponse | None]
) -> None:
    """Let the use case run under `fence` store `present(result)` as the request's answer in
    its own transaction (see the module note); a no-op outside an Idempotency-Key."""
    if fence is not None and fence.answer is not None:
        fence.answer.present = present


def stored_answer(
    fence: RequestFence | None, result: T, present: Callable[[T], StoredResponse]
) -> Response:
    """The response to a use case's `result`: the answer stored with it if its transaction
    stored one, else `present(result)` (which the middleware then stores, if final)."""
    slot = None if fence is None else fence.answer
    answer = (slot.committed(result) if slot is not None else None) or present(result)
    return Response(answer.body, answer.status, dict(answer.headers))


def principal_of(settings: Settings, headers: Headers, scope: Scope) -> str | None:
    """Whom a key belongs to: the buyer of a bearer token, "admin", or None if neither."""
    scheme, _, token = headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not token:
        return None
    if is_admin_key(settings, token):
        return ADMIN_PRINCIPAL
    return verified_buyer(scope, settings, token)


def is_final(response: StoredResponse) -> bool:
    """True for answers a retry must get again; False for 5xx, 202 and transient conflicts."""
    if response.status >= 500 or response.status == 202:
        return False
    return not (response.status == 409 and _problem_type(response) == _CONFLICT_TYPE)


def install_idempotency(app: FastAPI, settings: Settings) -> None:
    """Require Idempotency-Key on `app`'s mutating routes and document it in its OpenAPI."""
    app.add_middleware(IdempotencyMiddleware, settings=settings)
    plain = app.openapi

    def openapi() -> dict[str, Any]:
        document = plain()
        document_idempotency(document)
        return document

    app.openapi = openapi  # type: ignore[method-assign]


def document_idempotency(document: dict[str, Any]) -> None:
    """Add the required header and its problem answers to every mutating operation."""
    parameter = {
        "name": HEADER,
        "in": "header",
        "required": True,
        "description": "Unique per logical request; a retry with the same key is answered once.",
        "schema": {"type": "string", "minLength": 1, "maxLength": 255, "pattern": KEY_PATTERN},
    }
    for operations in document.get("paths", {}).values():
        for method, operation in operations.items():
            if method.upper() not in MUTATING_METHODS:
                continue
            parameters = operation.setdefault("parameters", [])
            if all(p.get("name") != HEADER for p in parameters):
                parameters.append(parameter)
            responses = operation.setdefault("responses", {})
            for status, entry in problem_responses(400, 409, 422).items():
                responses.setdefault(str(status), entry)


@dataclass
class _Captured:
    """The route's answer, held back until the key's record has it."""

    messages: list[Message] = field(default_factory=list)

    async def send(self, message: Message) -> None:
        self.messages.append(message)

    def response(self) -> StoredResponse:
        start = next(m for m in self.messages if m["type"] == "http.response.start")
        headers = tuple(
            (name.decode("latin-1").title(), value.decode("latin-1"))
            for name, value in start.get("headers", [])
            if name.decode("latin-1").lower() in _REPLAYED_HEADERS
        )
        body = b"".join(
            m.get("body", b"") for m in self.messages if m["type"] == "http.response.body"
        )
        return StoredResponse(int(start["status"]), headers, body)

    async def forward(self, send: Send) -> None:
        for message in self.messages:
            await send(message)


class IdempotencyMiddleware:
    """Run each keyed mutating request at most once per key (see the module note)."""

    def __init__(self, app: ASGIApp, settings: Settings) -> None:
        self.app = app
        self.settings = settings
        self.lease_s = settings.idempotency_lease_ms / 1000
        self._service: IdempotencyService | None = None
        self._next_reap = 0.0

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Pass reads and unidentified callers on; key every identified mutating request."""
        if scope["type"] != "http" or scope["method"] not in MUTATING_METHODS:
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        principal = principal_of(self.settings, headers, scope)
        service = self._service_of(scope)
        if principal is None or service is None or not _routed(scope):
            await self.app(scope, receive, send)
            return
        key = headers.get(HEADER)
        if key is None or not _KEY.fullmatch(key):
            error = IdempotencyKeyMissingError(f"send an {HEADER} header of 1..255 printable ASCII")
            await problem_response(problem_for_error(error), str(error))(scope, receive, send)
            return
        try:
            body = await _read_body(receive)
        except HTTPException as exc:  # the body limit, raised while the body streamed in
            answer = problem_response(problem_for_status(exc.status_code), str(exc.detail))
            await answer(scope, receive, send)
            return
        request = RequestKey(principal, scope["method"], scope["path"], key)
        await self._keyed(scope, receive, send, service, request, body)

    async def _keyed(
        self,
        scope: Scope,
        receive: Receive,
        send: Send,
        service: IdempotencyService,
        request: RequestKey,
        body: bytes,
    ) -> None:
        digest = fingerprint(request.method, request.path, body)
        begins = getattr(scope["app"].state, "request_begins", None)
        try:
            begun = None
            if begins is not None:  # PostgreSQL: one statement on the event loop
                begun = await service.begin_without_takeover(begins, request, digest)
            if begun is None:
                begun = await run_in_threadpool(service.begin, request, digest)
        except LastseatError as exc:
            await error_response(exc)(scope, receive, send)
            return
        if isinstance(begun, Replay):
            await _replay(begun.response, send)
        elif isinstance(begun, InProgress):
            error = RequestInProgressError(f"the first request with this {HEADER} still runs")
            retry = {"Retry-After": str(begun.retry_after_s)}
            answer = problem_response(problem_for_error(error), str(error), retry)
            await answer(scope, receive, send)
        else:
            await self._run(scope, receive, send, service, begun.fence, body)
            await self._reap_now_and_then(service)

    async def _run(
        self,
        scope: Scope,
        receive: Receive,
        send: Send,
        service: IdempotencyService,
        fence: RequestFence,
        body: bytes,
    ) -> None:
        captured = _Captured()
        slot = AnswerSlot()
        # In place: the metrics middleware reads what routing adds.
        scope[FENCE_SCOPE_KEY] = replace(fence, answer=slot)
        try:
            replayed = _replaying(body, receive)
            failed = await self._run_leased(scope, replayed, captured, service, fence)
        except BaseException:  # cancelled: the client went away or the server stops
            with anyio.CancelScope(shield=True):
                await _quietly(service.release, fence)
            raise
        if failed is not None:
            await _quietly(service.release, fence)
            raise failed
        response = captured.response()
        if slot.stored == response:
            pass  # stored by the route's use case, with its own commit
        elif is_final(response):
            await _quietly(service.finish, fence, response)
        else:
            await _quietly(service.release, fence)
        await captured.forward(send)

    async def _run_leased(
        self,
        scope: Scope,
        receive: Receive,
        captured: _Captured,
        service: IdempotencyService,
        fence: RequestFence,
    ) -> Exception | None:
        """Run the route while renewing the lease; the route's own error is returned, not
        raised inside the task group (which would wrap it in an ExceptionGroup)."""
        failed: Exception | None = None
        async with anyio.create_task_group() as group:
            group.start_soon(self._keep_leased, service, fence)
            try:
                await self.app(scope, receive, captured.send)
            except Exception as exc:
                failed = exc
            finally:
                group.cancel_scope.cancel()
        return failed

    async def _keep_leased(self, service: IdempotencyService, fence: RequestFence) -> None:
        """Renew the lease while the route runs, so only a dead attempt is taken over."""
        while True:
            await anyio.sleep(self.lease_s / 3)
            if await _quietly(service.renew, fence) is False:
                return  # taken over: our writes are fenced out from now on

    async def _reap_now_and_then(self, service: IdempotencyService) -> None:
        now = time.monotonic()
        if now >= self._next_reap:
            self._next_reap = now + REAP_INTERVAL_S
            await _quietly(service.reap)

    def _service_of(self, scope: Scope) -> IdempotencyService | None:
        services = getattr(scope["app"].state, "services", None)
        if not isinstance(services, Services):
            return None  # starting or stopping: the route answers 503
        if self._service is None or self._service.store is not services.store:
            self._service = IdempotencyService(
                services.store,
                lease=timedelta(milliseconds=self.settings.idempotency_lease_ms),
                retention=timedelta(seconds=self.settings.idempotency_retention_s),
            )
        return self._service


def _routed(scope: Scope) -> bool:
    """True if one of the app's routes serves this path with this method (from the flat route
    table: the router's own included-router matching costs ~5 % of a server's CPU)."""
    routes = route_table_of(scope).routes or scope["app"].router.routes
    return any(route.matches(scope)[0] is Match.FULL for route in routes)


async def _read_body(receive: Receive) -> bytes:
    chunks = []
    while True:
        message = await receive()
        if message["type"] != "http.request":
            break
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            break
    return b"".join(chunks)


def _replaying(body: bytes, receive: Receive) -> Receive:
    """A receive that hands the route the body already read, then the client's own events."""
    sent = False

    async def replayed() -> Message:
        nonlocal sent
        if sent:
            return await receive()
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    return replayed


async def _replay(response: StoredResponse, send: Send) -> None:
    headers = [
        (name.lower().encode("latin-1"), value.encode("latin-1"))
        for name, value in response.headers
    ]
    headers.append((b"content-length", str(len(response.body)).encode()))
    headers.append((REPLAYED_HEADER.lower().encode(), b"true"))
    await send({"type": "http.response.start", "status": response.status, "headers": headers})
    await send({"type": "http.response.body", "body": response.body})


async def _quietly(call: Callable[..., T], *args: Any) -> T | None:
    """Run a record update in the thread pool; a store failure is logged, not answered: the
    lease then simply ends, and the next retry takes the key over."""
    try:
        return await run_in_threadpool(call, *args)
    except LastseatError as exc:
        logger.warning("idempotency record update failed: %s", type(exc).__name__)
        return None


def _problem_type(response: StoredResponse) -> str | None:
    content_type = {n.lower(): v for n, v in response.headers}.get("content-type", "")
    if not content_type.startswith(PROBLEM_MEDIA_TYPE):
        return None
    try:
        found = json.loads(response.body).get("type")
    except (ValueError, AttributeError):
        return None
    return found if isinstance(found, str) else None
