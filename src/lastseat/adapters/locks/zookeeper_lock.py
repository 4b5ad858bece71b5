"""ZooKeeper locks: kazoo's lock recipe, fencing tokens from the grant's own znode, validity from
the session state.

The interleaving this lock cannot prevent on its own, and that fencing turns into a refused
write (session timeout 1 s; tokens are lock-znode czxids)::

    A: acquire(seat 7)  -> A's ephemeral znode .../seat%3A7/<uuid>__lock__0000000004, czxid 31
    A: ... paused (GC, SIGSTOP) past the session timeout: no pings reach the server ...
    ZK: session of A expires -> A's znode is deleted -> the watch of the next contender fires
    B: holds the lock: its znode has czxid 35 -> token 35; B writes seat 7 with 35; commit
    A: (wakes) writes seat 7 with token 31     -> storage has seen 35: FencedOutError
    A: kazoo reconnects, the server says "session expired" -> LOST -> A's grant.lost is set,
       which is advice and comes too late for the write above

Fencing token: the czxid (creation transaction id) of the grant's own lock znode, read back with
`exists()` once the recipe says we hold the lock. The recipe grants the lock in sequence order,
and within one parent the sequence order is the creation order, so every later holder of a
resource has a higher czxid. Preferred over the sequence number because a zxid is unique and
monotonic across the whole ensemble and survives the parent node being deleted and recreated
(which restarts the sequence counter at 0); it is a 64-bit (epoch, counter) pair that fits a
signed BIGINT while the epoch stays below 2**31. A restart raises the epoch, so tokens keep
growing; only a ZooKeeper whose data was wiped starts low again, and storage then refuses its
tokens until the fences it recorded are reset.

Validity follows the session, not kazoo's `Lock.is_acquired` (which stays True after the
session and the znode are gone). A connection listener tracks the states: SUSPENDED (the
connection dropped; the session, and with it the lock, may or may not still exist) makes every
grant suspect (`is_suspect()`, `extend()` answers False) until CONNECTED; LOST (the session
expired, the server deleted our znodes) sets `grant.lost` on every grant and counts it.

`ttl_ms` has no meaning here: the lease is the session timeout (`session_timeout_s`, bounded by
the server's min/max), renewed by the client's pings for as long as the process runs. `extend`
therefore extends nothing: it asks the server whether the grant's znode still exists and belongs
to our live session, and returns whether the lock is still held. Grants report the session
timeout as their `ttl_ms`.

One `KazooClient` (one session) per manager; each acquisition is its own recipe instance, so
threads of one process contend through the server like separate processes do. Each resource
keeps an empty parent znode under `root` after use; that is the recipe's design.
"""

from __future__ import annotations

import contextlib
import os
import socket
import threading
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from kazoo.client import KazooClient, KazooState  # type: ignore[import-untyped]
from kazoo.exceptions import (  # type: ignore[import-untyped]
    KazooException,
    LockTimeout,
    NoNodeError,
)
from kazoo.handlers.threading import KazooTimeoutError  # type: ignore[import-untyped]
from kazoo.recipe.lock import Lock  # type: ignore[import-untyped]

from lastseat.domain.errors import LockServiceError, LockTimeoutError, ValidationError
from lastseat.service.locking import Grant, LockStatistics

_SERVICE_ERRORS = (KazooException, KazooTimeoutError)
# Reconnect quickly: a lock holder that stays disconnected loses its session, and its lock.
_CONNECTION_RETRY = {"max_tries": -1, "delay": 0.05, "backoff": 2, "max_delay": 1.0}


class _WaitAwareLock(Lock):  # type: ignore[misc]
    """kazoo's lock recipe, remembering whether a predecessor made it wait."""

    waited = False

    def _get_predecessor(self, node: str) -> str | None:
        predecessor: str | None = super()._get_predecessor(node)
        if predecessor is not None:
            self.waited = True
        return predecessor


@dataclass(frozen=True, slots=True)
class _Held:
    grant: Grant
    path: str


class ZooKeeperLockManager:
    """`LockManager` over one ZooKeeper session; tokens are lock-znode czxids."""

    name = "zk-lock"

    def __init__(
        self,
        hosts: str,
        session_timeout_s: float = 10.0,
        *,
        connect_timeout_s: float = 10.0,
        root: str = "/lastseat/locks",
    ) -> None:
        self.hosts = hosts
        self.session_timeout_s = session_timeout_s
        self.connect_timeout_s = connect_timeout_s
        self.root = root.rstrip("/")
        self._client: Any = None
        self._start_mutex = threading.Lock()
        # Guards `_held` and `_generation` against the connection thread's listener.
        self._mutex = threading.Lock()
        self._held: dict[str, _Held] = {}
        self._generation = 0  # sessions lost so far
        self._connected = threading.Event()
        self._closing = False
        self._stats = LockStatistics()

    # -- the LockManager port -------------------------------------------------------------

    def acquire(self, resource: str, ttl_ms: int, timeout_s: float) -> Grant:
        """Wait up to `timeout_s` for the lock; `LockTimeoutError` when it stays taken."""
        client = self._zk()
        lock = _WaitAwareLock(client, self.znode_of(resource), self._identifier())
        started = time.monotonic_ns()
        try:
            got: bool = lock.acquire(blocking=True, timeout=timeout_s)
        except LockTimeout:
            got = False
        except _SERVICE_ERRORS as exc:
            raise LockServiceError(f"ZooKeeper lock on {resource!r} failed: {exc!r}") from exc
        finally:
            if lock.waited:
                self._stats.add(waits=1, wait_ns=time.monotonic_ns() - started)
        if not got:
            # The recipe also gives up at the deadline when it could not reach the server.
            if not self._connected.is_set():
                raise LockServiceError(f"ZooKeeper unreachable while locking {resource!r}")
            self._stats.add(timeouts=1)
            raise LockTimeoutError(f"lock on {resource!r} not granted within {timeout_s} s")
        return self._grant(client, lock, resource)

    def acquire_nowait(self, resource: str, ttl_ms: int) -> Grant | None:
        """The lock if it is free right now, else None."""
        client = self._zk()
        if not self._connected.is_set():
            raise LockServiceError(f"ZooKeeper unreachable while locking {resource!r}")
        lock = _WaitAwareLock(client, self.znode_of(resource), self._identifier())
        try:
            got: bool = lock.acquire(blocking=False)
        except _SERVICE_ERRORS as exc:
            raise LockServiceError(f"ZooKeeper lock on {resource!r} failed: {exc!r}") from exc
        return self._grant(client, lock, resource) if got else None

    def release(self, grant: Grant) -> bool:
        """Delete the grant's own znode; False if this manager does not hold that grant."""
        with self._mutex:
            held = self._held.get(grant.owner)
            if held is None or held.grant != grant or grant.is_lost():
                held = None
            else:
                del self._held[grant.owner]
        if held is None:
            self._stats.add(release_not_owner=1)
            return False
        try:
            # The znode's name carries the grant's uuid: nobody else's lock has this path.
            self._zk().delete(held.path)
        except NoNodeError:
            self._mark_lost(grant)
            self._stats.add(release_not_owner=1)
            return False
        except _SERVICE_ERRORS as exc:
            with self._mutex:
                self._held.setdefault(grant.owner, held)
            raise LockServiceError(f"ZooKeeper release of {grant.resource!r} failed") from exc
        self._stats.add(released=1)
        return True

    def extend(self, grant: Grant, ttl_ms: int) -> bool:
        """True if the grant's znode still belongs to our live session (nothing to extend)."""
        with self._mutex:
            held = self._held.get(grant.owner)
        if held is None or held.grant != grant or self.is_suspect(grant):
            return False
        client = self._zk()
        try:
            stat = client.exists(held.path)
        except _SERVICE_ERRORS:
            return False  # suspect: we cannot tell whether the session still holds it
        if stat is None or stat.ephemeralOwner != self._session_id(client):
            self._mark_lost(grant)
            return False
        self._stats.add(extended=1)
        return True

    def statistics(self) -> LockStatistics:
        """Counters since the manager was made."""
        return self._stats

    def close(self) -> None:
        """End the session: the server deletes every lock znode it holds."""
        with self._start_mutex:
            client, self._client = self._client, None
            if client is None:
                return
            self._closing = True
            try:
                client.stop()
                client.close()
            finally:
                self._closing = False

    # -- ZooKeeper specifics --------------------------------------------------------------

    def is_suspect(self, grant: Grant) -> bool:
        """True while the grant may be gone: lost, or the connection is down (SUSPENDED)."""
        return grant.is_lost() or not self._connected.is_set()

    def session_credentials(self) -> tuple[int, bytes] | None:
        """The current session's (id, password), None before connecting: for fault injection
        (a second client that takes the session over and closes it expires it for real)."""
        client_id = self._client.client_id if self._client is not None else None
        return (int(client_id[0]), bytes(client_id[1])) if client_id else None

    def znode_of(self, resource: str) -> str:
        """The znode under which the contenders for `resource` queue."""
        if not resource:
            raise ValidationError("a lock needs a resource name")
        # One znode per resource: escape "/" and the relative names "." and "..".
        return f"{self.root}/{quote(resource, safe='').replace('.', '%2E')}"

    # -- internals ------------------------------------------------------------------------

    def _zk(self) -> Any:
        with self._start_mutex:
            if self._client is None:
                client = KazooClient(
                    hosts=self.hosts,
                    timeout=self.session_timeout_s,
                    connection_retry=dict(_CONNECTION_RETRY),
                )
                client.add_listener(self._on_state)
                try:
                    client.start(timeout=self.connect_timeout_s)
                except _SERVICE_ERRORS as exc:
                    raise LockServiceError(f"cannot connect to ZooKeeper at {self.hosts}") from exc
                self._client = client
            return self._client

    def _on_state(self, state: str) -> None:
        # Runs on kazoo's connection thread: no ZooKeeper calls here, no blocking.
        if state == KazooState.CONNECTED:
            self._connected.set()
            return
        self._connected.clear()
        if state != KazooState.LOST:
            return  # SUSPENDED: every grant is suspect until CONNECTED again
        with self._mutex:
            self._generation += 1
            lost, self._held = list(self._held.values()), {}
        for held in lost:
            held.grant.lost.set()
        if lost and not self._closing:
            self._stats.add(lost=len(lost))

    def _grant(self, client: Any, lock: Any, resource: str) -> Grant:
        path = f"{lock.path}/{lock.node}"
        with self._mutex:
            generation = self._generation
        try:
            stat = client.exists(path)
        except _SERVICE_ERRORS as exc:
            self._abandon(client, path)
            raise LockServiceError(f"ZooKeeper lost the lock on {resource!r} as granted") from exc
        if stat is None or stat.ephemeralOwner != self._session_id(client):
            raise LockServiceError(f"the ZooKeeper session ended as {resource!r} was granted")
        grant = Grant(
            resource=resource,
            token=int(stat.czxid),
            owner=str(lock.node),
            ttl_ms=round(self.session_timeout_s * 1000),
        )
        with self._mutex:
            # A session lost after `exists()` answered has already run the listener; a grant
            # registered now would never learn it is lost.
            current = self._generation == generation
            if current:
                self._held[grant.owner] = _Held(grant, path)
        if not current:
            raise LockServiceError(f"the ZooKeeper session ended as {resource!r} was granted")
        self._stats.add(acquired=1)
        return grant

    @staticmethod
    def _abandon(client: Any, path: str) -> None:
        # A grant nobody will use: free it now rather than at the end of the session (which
        # deletes it anyway if the server cannot be reached now).
        with contextlib.suppress(*_SERVICE_ERRORS):
            client.delete(path)

    def _mark_lost(self, grant: Grant) -> None:
        with self._mutex:
            known = self._held.pop(grant.owner, None) is not None
        if not grant.is_lost():
            grant.lost.set()
            if known:
                self._stats.add(lost=1)

    @staticmethod
    def _identifier() -> str:
        # Shown by the recipe's `contenders()`: which process waits for the lock.
        return f"{socket.gethostname()}:{os.getpid()}"

    @staticmethod
    def _session_id(client: Any) -> int | None:
        client_id = client.client_id
        return int(client_id[0]) if client_id else None
