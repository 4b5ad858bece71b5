"""Payment-provider fixtures: a real provider process (`lastseat payments serve`), never a fake.

`provider` is one fault-free provider for the module; tests that set faults start their own
(`ThrowawayProvider(faults=...)`) or use `faulty_provider`, so counters are theirs alone. Every
test makes its own payment keys, so tests sharing a provider never see each other's payments.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest

from lastseat.adapters.payments.server import ThrowawayProvider


@pytest.fixture(scope="module")
def provider() -> Iterator[ThrowawayProvider]:
    """One fault-free provider process for the module."""
    with ThrowawayProvider() as server:
        yield server


@pytest.fixture
def faulty_provider() -> Iterator[ThrowawayProvider]:
    """A provider of this test alone: its faults and counters start at zero."""
    with ThrowawayProvider(seed=7) as server:
        yield server


@pytest.fixture
def key() -> str:
    """A payment key no other test uses."""
    return f"test-pay-{uuid.uuid4().hex}"
