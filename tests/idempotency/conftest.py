"""Idempotency-Key tests: the service over both backends, and real `lastseat serve` processes."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

_API_TESTS = str(Path(__file__).resolve().parents[1] / "api")
if _API_TESTS not in sys.path:
    sys.path.insert(0, _API_TESTS)

from lastseat.bootstrap import open_store  # noqa: E402
from lastseat.domain.clock import FakeClock  # noqa: E402
from lastseat.service.idempotency import IdempotencyService  # noqa: E402
from lastseat.service.ports import Store  # noqa: E402


@pytest.fixture
def store(db_url: str) -> Iterator[Store]:
    """A migrated store on each backend."""
    opened = open_store(db_url)
    try:
        yield opened
    finally:
        opened.close()


@pytest.fixture
def clock() -> FakeClock:
    """Time that moves only when a test says so."""
    return FakeClock()


@pytest.fixture
def keys(store: Store, clock: FakeClock) -> IdempotencyService:
    """The idempotency service with the default 30 s lease and 24 h retention."""
    return IdempotencyService(store, clock=clock)
