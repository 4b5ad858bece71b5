"""The server's background reconciler: drives unknown external payments to a final state.

Every server runs one; they may all run at once over one database, because each payment is
driven only by the reconciler (or request) that holds its lease (service/checkout.py).
Nothing runs for the wallet provider: its charges are never unknown.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from contextlib import contextmanager

from lastseat.domain.errors import LastseatError
from lastseat.service.checkout import Checkout

logger = logging.getLogger("lastseat.reconciler")


@contextmanager
def background_reconciler(checkout: Checkout, interval_ms: int) -> Iterator[None]:
    """Reconcile every `interval_ms` in a daemon thread while the block runs."""
    if checkout.provider.transactional or interval_ms <= 0:
        yield
        return
    stop = threading.Event()
    thread = threading.Thread(
        target=_loop, args=(checkout, interval_ms / 1000, stop), name="reconciler", daemon=True
    )
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join(timeout=30)


def _loop(checkout: Checkout, interval_s: float, stop: threading.Event) -> None:
    while not stop.wait(interval_s):
        try:
            report = checkout.reconcile()
        except LastseatError as exc:  # the database is busy or down: try again next round
            logger.warning("reconciler pass failed: %s", exc)
            continue
        if report.examined:
            logger.info("reconciled %s", report)
