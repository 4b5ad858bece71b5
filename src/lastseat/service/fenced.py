"""A store whose every write transaction first checks a request's fence.

Checking the fence first, before a strategy claims anything, keeps the check out of the time
a contended row is locked: the claim's row lock is held from the claim to COMMIT, so one more
statement after it would stretch every buyer's wait on a hot seat or pool.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager

from lastseat.service.idempotency import RequestFence
from lastseat.service.ports import InventoryTx, Isolation, ReadTx, Store
from lastseat.service.snapshot import Snapshot
from lastseat.service.statistics import StrategyStatistics


def fenced(store: Store, fence: RequestFence | None) -> Store:
    """`store`, or, under a request fence, `store` with the fence checked by every write."""
    return store if fence is None else _FencedStore(store, fence)


def unfenced(store: Store) -> tuple[Store, RequestFence | None]:
    """The store under a `fenced` wrapper and its fence, for a strategy that checks the fence
    itself (`batched` checks each buyer's fence inside that buyer's own step of a batch)."""
    if isinstance(store, _FencedStore):
        return store.inner, store.fence
    return store, None


class _FencedStore:
    def __init__(self, inner: Store, fence: RequestFence) -> None:
        self.inner = inner
        self.fence = fence

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
        with self.inner.write(stats, isolation=isolation, durable=durable) as tx:
            tx.check_request_fence(self.fence)
            yield tx

    def snapshot(self) -> Snapshot:
        return self.inner.snapshot()

    def close(self) -> None:
        self.inner.close()
