"""Liveness, readiness and metrics."""

from __future__ import annotations

from fastapi import APIRouter, Response

from lastseat.api.deps import MetricsDep, ServicesDep
from lastseat.api.metrics import CONTENT_TYPE
from lastseat.api.problems import problem_responses
from lastseat.api.schemas import Health

router = APIRouter(tags=["system"])
READY_PROBE_ID = "ready-probe"


@router.get("/health")
async def health() -> Health:
    """The process is up (it does not touch the database)."""
    return Health(status="ok")


@router.get("/ready", responses=problem_responses(503))
def ready(services: ServicesDep) -> Health:
    """The database answers a read."""
    with services.store.read() as tx:
        tx.event_currency(READY_PROBE_ID)
    return Health(status="ok")


@router.get(
    "/metrics",
    response_class=Response,
    responses={200: {"content": {CONTENT_TYPE: {"schema": {"type": "string"}}}}},
)
def metrics(metrics: MetricsDep, services: ServicesDep) -> Response:
    """Prometheus text: requests, latency, per strategy purchases and contention, and what the
    payment provider answered."""
    metrics.sync_strategy(services.booking.strategy.statistics())
    metrics.sync_payments(services.checkout.provider.name, services.checkout.statistics())
    return Response(metrics.render(), media_type=CONTENT_TYPE)
