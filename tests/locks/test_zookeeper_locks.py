"""ZooKeeper locks against a real server: exclusion across threads and processes, czxid tokens
that grow per resource, and the faults — a session expired by the server, a holder paused
past its session timeout, a connection dropped and resumed, a server nobody answers on."""

from __future__ import annotations

import multiprocessing
import os
import signal
import threading
import uuid
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from pathlib import Path

import pytest
from kazoo.client import KazooClient  # type: ignore[import-untyped]
from kazoo.recipe.lock import Lock  # type: ignore[import-untyped]
from zk_racers import (
    SESSION_TIMEOUT_S,
    WAIT_S,
    critical_section,
    eventually,
    hold_until_lost,
    lock_repeatedly,
    throwaway_zookeeper,
)

from lastseat.adapters.locks.zookeeper_lock import ZooKeeperLockManager
from lastseat.adapters.locks.zookeeper_server import ThrowawayZooKeeper, free_port
from lastseat.domain.errors import LockServiceError, LockTimeoutError
from lastseat.service.locking import Grant

TTL_MS = 1_000  # not meaningful for ZooKeeper (the session is the lease); the port asks for it


@pytest.fixture(scope="session")
def zk_server() -> Iterator[ThrowawayZooKeeper]:
    """One ZooKeeper server on a free 127.0.0.1 port for the session."""
    with throwaway_zookeeper() as server:
        yield server


@pytest.fixture
def resource() -> str:
    """A resource name no other test locks."""
    return f"seat/{uuid.uuid4().hex}"


@pytest.fixture
def managers(zk_server: ThrowawayZooKeeper) -> Iterator[list[ZooKeeperLockManager]]:
    """Three lock managers, each its own client and session."""
    made = [ZooKeeperLockManager(zk_server.hosts, SESSION_TIMEOUT_S) for _ in range(3)]
    yield made
    for manager in made:
        manager.close()


def contenders(hosts: str, manager: ZooKeeperLockManager, resource: str) -> int:
    """How many lock znodes (holder and waiters) the resource has on the server."""
    client = KazooClient(hosts=hosts)
    client.start(timeout=WAIT_S)
    try:
        return len(Lock(client, manager.znode_of(resource)).contenders())
    finally:
        client.stop()
        client.close()


def expire_session(hosts: str, manager: ZooKeeperLockManager, grant: Grant) -> None:
    """Expire the manager's session on the server, for real: a second client takes the session
    over (same id and password) and closes it. The manager's client may win the session back
    by reconnecting first; then we try again."""
    credentials = manager.session_credentials()
    assert credentials is not None
    for _ in range(10):
        thief = KazooClient(hosts=hosts, client_id=credentials, timeout=SESSION_TIMEOUT_S)
        thief.start(timeout=WAIT_S)
        thief.stop()
        thief.close()
        if grant.lost.wait(3 * SESSION_TIMEOUT_S):
            return
    raise AssertionError("the session never expired")


def test_a_held_lock_is_not_granted_to_another_client_until_released(
    managers: list[ZooKeeperLockManager], resource: str
) -> None:
    a, b, _ = managers
    first = a.acquire(resource, TTL_MS, WAIT_S)

    assert b.acquire_nowait(resource, TTL_MS) is None
    assert a.acquire_nowait(resource, TTL_MS) is None  # not reentrant: a second contender
    assert a.extend(first, TTL_MS)
    assert a.release(first)
    second = b.acquire_nowait(resource, TTL_MS)

    assert second is not None
    assert second.token > first.token
    assert not first.is_lost()
    assert a.statistics().as_dict() | {"wait_ns": 0} == {
        "acquired": 1,
        "waits": 0,
        "wait_ns": 0,
        "timeouts": 0,
        "released": 1,
        "release_not_owner": 0,
        "extended": 1,
        "lost": 0,
    }


def test_acquire_gives_up_at_its_timeout_counts_it_and_leaves_no_contender(
    zk_server: ThrowawayZooKeeper, managers: list[ZooKeeperLockManager], resource: str
) -> None:
    a, b, _ = managers
    a.acquire(resource, TTL_MS, WAIT_S)

    with pytest.raises(LockTimeoutError):
        b.acquire(resource, TTL_MS, 0.2)

    stats = b.statistics()
    assert (stats.timeouts, stats.waits, stats.acquired) == (1, 1, 0)
    assert stats.wait_ns >= 200_000_000
    assert contenders(zk_server.hosts, a, resource) == 1


def test_a_waiting_client_gets_the_lock_once_the_holder_releases_it(
    zk_server: ThrowawayZooKeeper, managers: list[ZooKeeperLockManager], resource: str
) -> None:
    a, b, _ = managers
    first = a.acquire(resource, TTL_MS, WAIT_S)
    with ThreadPoolExecutor(1) as pool:
        waiting = pool.submit(b.acquire, resource, TTL_MS, WAIT_S)
        eventually(lambda: contenders(zk_server.hosts, a, resource) == 2, "b queues for the lock")
        assert not waiting.done()
        assert a.release(first)
        second = waiting.result(WAIT_S)

    assert second.token > first.token
    assert b.statistics().waits == 1


def test_threads_never_hold_a_lock_together_and_tokens_grow(
    managers: list[ZooKeeperLockManager], resource: str, tmp_path: Path
) -> None:
    # Two clients, four threads each: threads that share a session contend like processes.
    threads, rounds = 8, 15
    barrier = threading.Barrier(threads)
    marker, log = tmp_path / "inside", tmp_path / "tokens"

    def take_turns(manager: ZooKeeperLockManager) -> int:
        barrier.wait(WAIT_S)
        exclusive = 0
        for _ in range(rounds):
            grant = manager.acquire(resource, TTL_MS, WAIT_S)
            exclusive += critical_section(marker, log, grant.token)
            assert manager.release(grant)
        return exclusive

    with ThreadPoolExecutor(threads) as pool:
        results = list(pool.map(take_turns, [managers[i % 2] for i in range(threads)]))

    tokens = [int(line) for line in log.read_text().split()]
    assert sum(results) == len(tokens) == threads * rounds
    assert tokens == sorted(set(tokens))
    assert sum(m.statistics().waits for m in managers) > 0  # they really contended


@pytest.mark.slow
def test_processes_never_hold_a_lock_together_and_tokens_grow(
    zk_server: ThrowawayZooKeeper, resource: str, tmp_path: Path
) -> None:
    processes, rounds = 4, 25
    ctx = multiprocessing.get_context("spawn")
    # All four wait at the barrier, so each round of tasks runs in its own worker process.
    with ctx.Manager() as sync, ProcessPoolExecutor(processes, mp_context=ctx) as pool:
        barrier = sync.Barrier(processes)
        runs = [
            pool.submit(lock_repeatedly, zk_server.hosts, resource, rounds, str(tmp_path), barrier)
            for _ in range(processes)
        ]
        results = [run.result() for run in runs]

    tokens = [int(line) for line in (tmp_path / "tokens").read_text().split()]
    assert sum(r["exclusive"] for r in results) == len(tokens) == processes * rounds
    assert tokens == sorted(set(tokens))
    assert sum(r["waits"] for r in results) > 0
    assert all(r["acquired"] == r["released"] == rounds for r in results)


def test_an_expired_session_loses_the_grant_and_a_stale_release_spares_the_new_owner(
    zk_server: ThrowawayZooKeeper, managers: list[ZooKeeperLockManager], resource: str
) -> None:
    a, b, c = managers
    stale = a.acquire(resource, TTL_MS, WAIT_S)

    expire_session(zk_server.hosts, a, stale)
    fresh = b.acquire(resource, TTL_MS, WAIT_S)

    assert fresh.token > stale.token
    assert a.release(stale) is False
    assert a.extend(stale, TTL_MS) is False
    assert c.acquire_nowait(resource, TTL_MS) is None  # b's lock survived a's release
    assert b.extend(fresh, TTL_MS)
    assert (a.statistics().lost, a.statistics().release_not_owner) == (1, 1)
    # The manager carries on with a new session.
    assert b.release(fresh)
    assert a.acquire(resource, TTL_MS, WAIT_S).token > fresh.token


def test_a_grant_of_another_owner_is_neither_released_nor_extended(
    managers: list[ZooKeeperLockManager], resource: str
) -> None:
    a, b, _ = managers
    grant = a.acquire(resource, TTL_MS, WAIT_S)

    assert b.release(grant) is False  # another manager's grant
    forged = Grant(grant.resource, grant.token, "someone-else", grant.ttl_ms)
    assert a.release(forged) is False
    assert a.extend(forged, TTL_MS) is False
    assert b.acquire_nowait(resource, TTL_MS) is None
    assert a.release(grant)


@pytest.mark.slow
def test_a_holder_paused_past_its_session_timeout_loses_the_lock_to_another_process(
    zk_server: ThrowawayZooKeeper, managers: list[ZooKeeperLockManager], resource: str
) -> None:
    ctx = multiprocessing.get_context("spawn")
    reports = ctx.Queue()
    holder = ctx.Process(target=hold_until_lost, args=(zk_server.hosts, resource, reports))
    holder.start()
    try:
        kind, paused_token = reports.get(timeout=WAIT_S)
        assert kind == "granted"
        os.kill(holder.pid or 0, signal.SIGSTOP)
        b = managers[1]

        # Granted only once the server has expired the paused holder's session.
        fresh = b.acquire(resource, TTL_MS, WAIT_S)
        os.kill(holder.pid or 0, signal.SIGCONT)
        kind, woke = reports.get(timeout=WAIT_S)
    finally:
        os.kill(holder.pid or 0, signal.SIGCONT)
        holder.join(WAIT_S)
        if holder.is_alive():
            holder.kill()

    assert kind == "woke"
    assert fresh.token > paused_token
    assert b.statistics().waits == 1  # b really waited for the paused holder's lock
    assert woke["learned_lost"] is True
    assert (woke["extend"], woke["release"]) == (False, False)
    assert (woke["lost"], woke["release_not_owner"]) == (1, 1)
    assert b.extend(fresh, TTL_MS)
    assert managers[2].acquire_nowait(resource, TTL_MS) is None


def test_a_dropped_connection_makes_a_grant_suspect_until_the_session_resumes(
    resource: str,
) -> None:
    # A server of its own: this test kills it.
    with throwaway_zookeeper() as server:
        # kazoo waits up to session_timeout / len(hosts) for one handshake; with a single host a
        # handshake that stalls on the restarting JVM can outlast the session itself (CI saw it:
        # "socket time-out during read", then "Session has expired"). Listing the host four
        # times bounds one attempt to a quarter of the session, as a 4-node ensemble would.
        hosts = ",".join([server.hosts] * 4)
        manager = ZooKeeperLockManager(hosts, 20 * SESSION_TIMEOUT_S)
        try:
            grant = manager.acquire(resource, TTL_MS, WAIT_S)
            assert not manager.is_suspect(grant)

            server.kill()
            eventually(lambda: manager.is_suspect(grant), "the client notices (SUSPENDED)")
            assert manager.extend(grant, TTL_MS) is False
            server.restart()
            eventually(lambda: not manager.is_suspect(grant), "the session resumes")

            assert not grant.is_lost()
            assert manager.extend(grant, TTL_MS)
            assert manager.release(grant)
            assert manager.statistics().lost == 0
        finally:
            manager.close()


def test_a_server_nobody_answers_on_is_a_lock_service_error(resource: str) -> None:
    manager = ZooKeeperLockManager(f"127.0.0.1:{free_port()}", connect_timeout_s=0.5)
    try:
        with pytest.raises(LockServiceError):
            manager.acquire(resource, TTL_MS, 1.0)
        with pytest.raises(LockServiceError):
            manager.acquire_nowait(resource, TTL_MS)
    finally:
        manager.close()
