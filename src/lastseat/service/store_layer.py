"""A store wrapper that does its part of every write transaction: a layer over a store.

A use case wraps its store per request (the request's fence, the claim's price). Each layer
does its part at the start of every write transaction the strategy opens, and `within` lets
it do the same part in a transaction it did not open (a `batched` step, inside one shared
transaction). Reads, snapshots and closing go to the store underneath.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager

from lastseat.service.ports import InventoryTx, Isolation, ReadTx, Store
from lastseat.service.snapshot import Snapshot
from lastseat.service.statistics import StrategyStatistics


class StoreLayer:
    """`inner`, with `within(tx)` run first in each of its write transactions."""

    def __init__(self, inner: Store) -> None:
        self.inner = inner

    def within(self, tx: InventoryTx) -> AbstractContextManager[None]:
        """This layer's part of a write transaction, done in `tx`."""
        raise NotImplementedError

    def read(self) -> AbstractContextManager[ReadTx]:
        return self.inner.read()

    @contextmanager
    def write(
        self,
        stats: StrategyStatistics | None = None,
        *,
        isolation: Isolation = Isolation.READ_COMMITTED,
        durable: bool = True,
    ) -> Iterator[InventoryTx]:
        with self.inner.write(stats, isolation=isolation, durable=durable) as tx, self.within(tx):
            yield tx

    def snapshot(self) -> Snapshot:
        return self.inner.snapshot()

    def close(self) -> None:
        self.inner.close()
