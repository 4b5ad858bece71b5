"""The app factory: one FastAPI app per worker process, with its own store opened at startup.

Nothing is created at import time (DESIGN.md §6): `create_app(settings)` builds the app, and
its lifespan opens the store when the server starts and closes it when the server stops.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from datetime import timedelta
from typing import Any

from fastapi import FastAPI

from lastseat import __version__
from lastseat.api.body import BodyLimitMiddleware
from lastseat.api.cache import AvailabilityCache
from lastseat.api.idempotency import install_idempotency
from lastseat.api.metrics import Metrics, RequestMetricsMiddleware
from lastseat.api.problems import install_problem_handlers
from lastseat.api.reconciler import background_reconciler
from lastseat.api.route_table import RouteTable
from lastseat.api.routes import buyers, ceiling, events, holds, orders, system
from lastseat.api.schemas import Problem
from lastseat.api.settings import Settings
from lastseat.bootstrap import Services, build, open_request_begins, open_store

# Connections per server process, opened at start-up; FastAPI's threadpool runs 40 requests.
# Each keyed request takes a connection three times (Idempotency-Key begin, the purchase, the
# stored answer), and purchases queued on a hot row keep theirs while they wait: 16 made the
# bookkeeping queue behind them (measured: ga over HTTP 0.42x -> 0.47-0.50x of direct at 32).
SERVER_POOL_SIZE = 32
# Idempotency-Key begins on PostgreSQL take one of these (asyncio) connections for one round
# trip each, on the event loop (lastseat.adapters.postgres.request_begins).
BEGINS = 4

DESCRIPTION = (
    "Sell seats and general-admission units to concurrent buyers without ever overselling. "
    "Errors are RFC 9457 problem documents with stable `type` URIs."
)


def _lifespan(settings: Settings) -> Callable[[FastAPI], AbstractAsyncContextManager[None]]:
    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        store = open_store(settings.db, create=True, pool_size=SERVER_POOL_SIZE)
        services: Services | None = None
        begins = None
        try:
            begins = app.state.request_begins = await open_request_begins(settings.db, BEGINS)
            services = build(
                store,
                settings.strategy,
                allow_unsafe=settings.allow_unsafe,
                pause=settings.pause(),
                locks=settings.locks,
                payments=settings.payments,
                hold_ttl=timedelta(seconds=settings.hold_ttl_s),
                admission=settings.admission,
            )
            app.state.services = services
            with background_reconciler(services.checkout, settings.reconcile_interval_ms):
                yield
        finally:
            app.state.services = app.state.request_begins = None
            if begins is not None:
                await begins.close()
            if services is not None:
                services.close()
            store.close()

    return lifespan


def _with_problem_schema(app: FastAPI) -> Callable[[], dict[str, Any]]:
    """The OpenAPI document, with the Problem schema every error response refers to."""
    plain = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            document = plain()
            schemas = document.setdefault("components", {}).setdefault("schemas", {})
            schemas["Problem"] = Problem.model_json_schema(
                ref_template="#/components/schemas/{model}"
            )
            app.openapi_schema = document
        return app.openapi_schema

    return openapi


def create_app(settings: Settings) -> FastAPI:
    """A new app serving `settings.db` with `settings.strategy`."""
    settings.validate()
    app = FastAPI(
        title="lastseat",
        version=__version__,
        description=DESCRIPTION,
        lifespan=_lifespan(settings),
    )
    metrics = Metrics(settings.strategy)
    app.state.settings = settings
    app.state.metrics = metrics
    app.state.cache = AvailabilityCache(settings.cache_ttl_ms)
    app.state.services = None
    app.state.request_begins = None
    install_problem_handlers(app)
    install_idempotency(app, settings)  # inside the body limit: it reads whole bodies
    app.add_middleware(BodyLimitMiddleware)
    app.add_middleware(RequestMetricsMiddleware, metrics=metrics)
    modules = (system, events, buyers, holds, orders, ceiling)
    for module in modules:
        app.include_router(module.router)
    app.state.route_table = RouteTable(
        [*app.router.routes, *(route for module in modules for route in module.router.routes)]
    )
    app.openapi = _with_problem_schema(app)  # type: ignore[method-assign]
    return app


def app_from_env() -> FastAPI:
    """The uvicorn factory for worker processes: settings from `LASTSEAT_*` variables."""
    return create_app(Settings.from_env(os.environ))
