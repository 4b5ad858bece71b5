"""What a route gets from its app: the services of this process, the cache and the metrics.

Dependencies that never block are `async def`: FastAPI runs a plain `def` dependency in its
threadpool, a thread hop per dependency per request (profiled: a fifth of a server's CPU).
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from lastseat.api.cache import AvailabilityCache
from lastseat.api.metrics import Metrics
from lastseat.api.settings import Settings
from lastseat.bootstrap import Services
from lastseat.domain.errors import StoreError


async def services(request: Request) -> Services:
    """The services this worker process opened at startup."""
    found = getattr(request.app.state, "services", None)
    if not isinstance(found, Services):
        raise StoreError("the server is starting or stopping")
    return found


async def cache(request: Request) -> AvailabilityCache:
    """This process's availability cache."""
    found = request.app.state.cache
    assert isinstance(found, AvailabilityCache)
    return found


async def metrics(request: Request) -> Metrics:
    """This app's metrics."""
    found = request.app.state.metrics
    assert isinstance(found, Metrics)
    return found


def settings(request: Request) -> Settings:
    """This app's settings."""
    found = request.app.state.settings
    assert isinstance(found, Settings)
    return found


async def settings_dependency(request: Request) -> Settings:
    """This app's settings, as a dependency (no thread hop)."""
    return settings(request)


ServicesDep = Annotated[Services, Depends(services)]
CacheDep = Annotated[AvailabilityCache, Depends(cache)]
MetricsDep = Annotated[Metrics, Depends(metrics)]
SettingsDep = Annotated[Settings, Depends(settings_dependency)]
