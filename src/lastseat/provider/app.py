"""The provider's HTTP API: payments, captures, refunds, listings, and the fault controls.

Mutating routes take an `Idempotency-Key`; their answer (201, or 402 for a decline) is stored
under it in the transaction that did the work, and a repeat gets the stored answer with
`Idempotent-Replayed: true`. Faults (outage, latency, declines, capture-then-timeout) apply to
the mutating routes only; reads and `/_faults` are never faulted (except by a refuse outage,
which takes the whole listener away).
"""

from __future__ import annotations

import asyncio
import hmac
import math
import sqlite3
from collections.abc import Callable
from typing import Annotated, Any

from fastapi import APIRouter, Depends, FastAPI, Query, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field
from starlette.concurrency import run_in_threadpool

from lastseat.provider import ledger
from lastseat.provider.faults import Faults, OutageMode
from lastseat.provider.limits import BodyLimitMiddleware
from lastseat.provider.problems import ProblemError, install_problem_handlers
from lastseat.provider.settings import ProviderSettings
from lastseat.provider.store import ProviderStore, StoredAnswer, fingerprint

MAX_KEY_LENGTH = 255
MAX_PAGE = 1000
_STRICT = ConfigDict(extra="forbid", strict=True)


class PaymentIn(BaseModel):
    """Body of `POST /v1/payments`."""

    model_config = _STRICT
    customer: str = Field(min_length=1, max_length=200)
    amount_minor: int = Field(gt=0, le=10**12)
    currency: str = Field(pattern=r"^[A-Z]{3}$")
    capture: bool = True


class RefundIn(BaseModel):
    """Body of `POST /v1/refunds`."""

    model_config = _STRICT
    payment_id: str = Field(min_length=1, max_length=64)
    amount_minor: int = Field(gt=0, le=10**12)


class OutageIn(BaseModel):
    """An outage window starting now; `for_ms: 0` ends a 503 outage.

    A refuse window cannot be ended early: nothing, this API included, is reachable during it.
    """

    model_config = ConfigDict(extra="forbid")
    mode: OutageMode
    for_ms: float = Field(ge=0, le=3_600_000)


class FaultsIn(BaseModel):
    """Body of `PUT /_faults`: only the knobs given change."""

    model_config = ConfigDict(extra="forbid")
    latency_ms: float | None = Field(default=None, ge=0, le=3_600_000)
    latency_sigma: float | None = Field(default=None, ge=0, le=10)
    slow_rate: float | None = Field(default=None, ge=0, le=1)
    slow_ms: float | None = Field(default=None, ge=0, le=3_600_000)
    decline_rate: float | None = Field(default=None, ge=0, le=1)
    capture_timeout_rate: float | None = Field(default=None, ge=0, le=1)
    hang_ms: float | None = Field(default=None, ge=0, le=3_600_000)
    outage: OutageIn | None = None


def _idempotency_key(request: Request) -> str:
    key = request.headers.get("idempotency-key", "")
    if not key or len(key) > MAX_KEY_LENGTH or not key.isprintable() or not key.isascii():
        raise ProblemError(
            400,
            "idempotency-key-missing",
            f"send an Idempotency-Key header of 1 to {MAX_KEY_LENGTH} printable ASCII characters",
        )
    return key


IdempotencyKey = Annotated[str, Depends(_idempotency_key)]


def _require_json(request: Request) -> None:
    media_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if media_type != "application/json":
        raise ProblemError(415, "unsupported-media-type", "send the body as application/json")


JSON_BODY = [Depends(_require_json)]


def _authorizer(api_key: str) -> Callable[[Request], None]:
    expected = f"Bearer {api_key}".encode()

    def require_key(request: Request) -> None:
        given = request.headers.get("authorization", "").encode()
        if not hmac.compare_digest(given, expected):
            raise ProblemError(
                401, "unauthorized", "missing or wrong api key", {"WWW-Authenticate": "Bearer"}
            )

    return require_key


class _Handlers:
    """The routes' shared state: the store and the fault controls."""

    def __init__(self, store: ProviderStore, faults: Faults) -> None:
        self.store = store
        self.faults = faults

    async def enter_faulted(self) -> None:
        """The faults a mutating request meets before it is handled: outage, then latency."""
        self.faults.count("requests")
        outage = self.faults.outage()
        if outage is not None and outage[0] is OutageMode.HTTP_503:
            self.faults.count("outage_503")
            retry_after = str(max(1, math.ceil(outage[1] / 1000)))
            raise ProblemError(
                503, "outage", "the provider is down for maintenance", {"Retry-After": retry_after}
            )
        delay_s = self.faults.delay_s()
        if delay_s > 0:
            await asyncio.sleep(delay_s)

    async def answer(self, stored: StoredAnswer, *, captured: bool) -> JSONResponse:
        """The stored answer, held back past the caller's patience when the fault says so."""
        if captured and self.faults.roll_capture_timeout():
            # The capture is committed; from here on the caller cannot learn it.
            self.faults.count("replay_then_timeout" if stored.replayed else "capture_then_timeout")
            await asyncio.sleep(self.faults.config.hang_ms / 1000)
        headers = {"Idempotent-Replayed": "true"} if stored.replayed else None
        return JSONResponse(stored.body, stored.status_code, headers)


def _mutations_router(handlers: _Handlers) -> APIRouter:
    router = APIRouter(prefix="/v1")
    store, faults = handlers.store, handlers.faults

    @router.post("/payments", status_code=201, dependencies=JSON_BODY)
    async def create_payment(body: PaymentIn, key: IdempotencyKey) -> JSONResponse:
        await handlers.enter_faulted()
        decline_code = faults.roll_decline()
        stored = await run_in_threadpool(
            store.idempotent,
            key,
            fingerprint("POST", "/v1/payments", body.model_dump()),
            lambda conn: ledger.create_payment(
                conn,
                key,
                body.customer,
                body.amount_minor,
                body.currency,
                capture=body.capture,
                decline_code=decline_code,
            ),
        )
        if stored.status_code == 402 and not stored.replayed:
            faults.count("declined")
        captured = stored.body.get("status") == "captured"
        return await handlers.answer(stored, captured=captured)

    @router.post("/payments/{payment_id}/capture")
    async def capture_payment(payment_id: str, key: IdempotencyKey) -> JSONResponse:
        await handlers.enter_faulted()
        path = f"/v1/payments/{payment_id}/capture"
        stored = await run_in_threadpool(
            store.idempotent,
            key,
            fingerprint("POST", path, {}),
            lambda conn: ledger.capture_payment(conn, payment_id),
        )
        return await handlers.answer(stored, captured=True)

    @router.post("/refunds", status_code=201, dependencies=JSON_BODY)
    async def create_refund(body: RefundIn, key: IdempotencyKey) -> JSONResponse:
        await handlers.enter_faulted()
        stored = await run_in_threadpool(
            store.idempotent,
            key,
            fingerprint("POST", "/v1/refunds", body.model_dump()),
            lambda conn: ledger.refund_payment(conn, key, body.payment_id, body.amount_minor),
        )
        return await handlers.answer(stored, captured=False)

    return router


def _reads_router(store: ProviderStore) -> APIRouter:
    router = APIRouter(prefix="/v1")

    @router.get("/payments/{payment_id}")
    async def get_payment(payment_id: str) -> dict[str, Any]:
        return await run_in_threadpool(_read, store, ledger.get_payment, payment_id)

    @router.get("/payments")
    async def list_payments(
        idempotency_key: Annotated[str | None, Query(max_length=MAX_KEY_LENGTH)] = None,
        after: Annotated[int, Query(ge=0)] = 0,
        limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = MAX_PAGE,
    ) -> dict[str, Any]:
        if idempotency_key is not None:
            return await run_in_threadpool(_read, store, ledger.payment_by_key, idempotency_key)
        return await run_in_threadpool(_page, store, ledger.list_payments, after, limit)

    @router.get("/refunds")
    async def list_refunds(
        after: Annotated[int, Query(ge=0)] = 0,
        limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = MAX_PAGE,
    ) -> dict[str, Any]:
        return await run_in_threadpool(_page, store, ledger.list_refunds, after, limit)

    return router


Reader = Callable[[sqlite3.Connection, str], dict[str, Any]]
Lister = Callable[[sqlite3.Connection, int, int], list[dict[str, Any]]]


def _read(store: ProviderStore, reader: Reader, argument: str) -> dict[str, Any]:
    with store.read() as conn:
        return reader(conn, argument)


def _page(store: ProviderStore, lister: Lister, after: int, limit: int) -> dict[str, Any]:
    with store.read() as conn:
        # One row more than asked tells whether another page follows.
        rows = lister(conn, after, limit + 1)
    data = rows[:limit]
    return {
        "object": "list",
        "data": data,
        "has_more": len(rows) > limit,
        "next_after": data[-1]["seq"] if data else after,
    }


def _faults_router(faults: Faults) -> APIRouter:
    router = APIRouter()

    @router.get("/_faults")
    async def read_faults() -> dict[str, Any]:
        return faults.snapshot()

    @router.put("/_faults")
    async def change_faults(body: FaultsIn) -> dict[str, Any]:
        changes = body.model_dump(exclude_none=True, exclude={"outage"})
        try:
            faults.config = faults.config.updated(changes)
        except ValueError as exc:
            raise ProblemError(422, "validation", str(exc)) from exc
        if body.outage is not None:
            await _start_outage(faults, body.outage)
        return faults.snapshot()

    return router


async def _start_outage(faults: Faults, outage: OutageIn) -> None:
    if outage.mode is OutageMode.REFUSE and outage.for_ms > 0:
        if faults.refuse_hook is None:
            raise ProblemError(
                409, "refuse-unsupported", "this process does not own its listening socket"
            )
        faults.start_outage(outage.mode, outage.for_ms)
        # Returns once nothing accepts connections any more; this answer still goes out.
        await faults.refuse_hook(outage.for_ms / 1000)
        return
    faults.start_outage(outage.mode, outage.for_ms)


def create_app(settings: ProviderSettings, store: ProviderStore, faults: Faults) -> FastAPI:
    """The provider app over an open store and a fault state (both owned by the caller)."""
    app = FastAPI(title="lastseat payment provider (simulator)", openapi_url=None)
    install_problem_handlers(app)
    app.add_middleware(BodyLimitMiddleware, max_bytes=settings.max_body_bytes)
    authorized = [Depends(_authorizer(settings.api_key))]
    app.include_router(_mutations_router(_Handlers(store, faults)), dependencies=authorized)
    app.include_router(_reads_router(store), dependencies=authorized)
    app.include_router(_faults_router(faults), dependencies=authorized)

    @app.get("/healthz")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    return app
