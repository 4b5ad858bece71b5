"""The Redis lock managers against real servers: one Redis, and Redlock over three.

Concurrency is real (threads, spawned processes, separate connections); order is forced with
barriers and with the lock's own waiting, never with sleeps. Each holder checks the critical
section through a scratch Redis: a holder count that must read 1 on entry, a read-then-write
counter that loses updates if two holders overlap, and the list of tokens in lock order.
"""

from __future__ import annotations

import itertools
import multiprocessing
import threading
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import redis

from lastseat.adapters.locks.redis_lock import RedisLockManager
from lastseat.adapters.locks.redis_scripts import fence_key, lock_key
from lastseat.adapters.locks.redis_server import ThrowawayRedis
from lastseat.adapters.locks.redlock import RedlockManager
from lastseat.domain.errors import LockServiceError, LockTimeoutError
from lastseat.service.locking import Grant, LockManager

KINDS = ["redis-lock", "redlock"]
LONG_TTL_MS = 30_000
WAIT_S = 30.0

Factory = Callable[..., LockManager]


def make_manager(kind: str, urls: list[str], **options: Any) -> LockManager:
    if kind == "redis-lock":
        return RedisLockManager(urls[0], **options)
    return RedlockManager(urls, **options)


@pytest.fixture
def resource() -> str:
    return f"seat-{uuid.uuid4().hex[:12]}"


@pytest.fixture(params=KINDS)
def urls(
    request: pytest.FixtureRequest,
) -> list[str]:
    if request.param == "redis-lock":
        server: ThrowawayRedis = request.getfixturevalue("redis_server")
        return [server.url]
    servers: list[ThrowawayRedis] = request.getfixturevalue("redlock_servers")
    return [s.url for s in servers]


@pytest.fixture
def factory(request: pytest.FixtureRequest, urls: list[str]) -> Iterator[Factory]:
    kind = "redis-lock" if len(urls) == 1 else "redlock"
    made: list[LockManager] = []

    def make(**options: Any) -> LockManager:
        made.append(make_manager(kind, urls, **options))
        return made[-1]

    yield make
    for manager in made:
        manager.close()


def critical_section(scratch: redis.Redis, resource: str, grant: Grant) -> bool:
    """Work under the lock; True if another holder was inside at the same time."""
    holders = scratch.incr(f"test:{resource}:holders")
    seen = int(scratch.get(f"test:{resource}:counter") or 0)
    scratch.set(f"test:{resource}:counter", seen + 1)
    scratch.rpush(f"test:{resource}:tokens", grant.token)
    scratch.decr(f"test:{resource}:holders")
    return holders != 1


def hold_repeatedly(
    manager: LockManager, scratch_url: str, resource: str, rounds: int, start: Any
) -> int:
    """Take the lock `rounds` times after the start barrier; the number of overlaps seen."""
    scratch = redis.Redis.from_url(scratch_url)
    overlaps = 0
    start.wait()
    for _ in range(rounds):
        grant = manager.acquire(resource, LONG_TTL_MS, WAIT_S)
        overlaps += critical_section(scratch, resource, grant)
        assert manager.release(grant)
    scratch.close()
    return overlaps


def process_holder(
    kind: str, urls: list[str], resource: str, rounds: int, start: Any, results: Any
) -> None:
    """Entry point of a spawned process: hold the lock repeatedly, report overlaps and stats."""
    manager = make_manager(kind, urls)
    try:
        overlaps = hold_repeatedly(manager, urls[0], resource, rounds, start)
        results.put((overlaps, manager.statistics().as_dict()))
    finally:
        manager.close()


def recorded(scratch_url: str, resource: str) -> tuple[int, list[int]]:
    scratch = redis.Redis.from_url(scratch_url)
    counter = int(scratch.get(f"test:{resource}:counter") or 0)
    tokens = [int(t) for t in scratch.lrange(f"test:{resource}:tokens", 0, -1)]
    scratch.close()
    return counter, tokens


def assert_strictly_increasing(tokens: list[int]) -> None:
    assert all(a < b for a, b in itertools.pairwise(tokens)), tokens


# -- the contract, for both managers ------------------------------------------------------


def test_threads_never_hold_the_lock_together(
    factory: Factory, urls: list[str], resource: str
) -> None:
    manager = factory()
    threads_n, rounds = 8, 25
    start = threading.Barrier(threads_n)
    overlaps: list[int] = []
    workers = [
        threading.Thread(
            target=lambda: overlaps.append(
                hold_repeatedly(manager, urls[0], resource, rounds, start)
            )
        )
        for _ in range(threads_n)
    ]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    counter, tokens = recorded(urls[0], resource)
    stats = manager.statistics()
    assert overlaps == [0] * threads_n
    assert counter == threads_n * rounds  # no lost update in the read-then-write
    assert len(tokens) == threads_n * rounds
    assert_strictly_increasing(tokens)
    assert stats.acquired == stats.released == threads_n * rounds
    assert stats.waits > 0  # the threads really contended
    assert stats.wait_ns > 0


@pytest.mark.slow
def test_processes_never_hold_the_lock_together(urls: list[str], resource: str) -> None:
    kind = "redis-lock" if len(urls) == 1 else "redlock"
    processes_n, rounds = 4, 30
    ctx = multiprocessing.get_context("spawn")
    start = ctx.Barrier(processes_n)
    results = ctx.Queue()
    processes = [
        ctx.Process(target=process_holder, args=(kind, urls, resource, rounds, start, results))
        for _ in range(processes_n)
    ]
    for process in processes:
        process.start()
    reports = [results.get(timeout=120) for _ in processes]
    for process in processes:
        process.join(timeout=30)
        assert process.exitcode == 0
    counter, tokens = recorded(urls[0], resource)
    assert [overlaps for overlaps, _ in reports] == [0] * processes_n
    assert counter == processes_n * rounds
    assert len(tokens) == processes_n * rounds
    assert_strictly_increasing(tokens)
    assert sum(stats["waits"] for _, stats in reports) > 0


def test_acquire_nowait_returns_none_while_the_lock_is_held(
    factory: Factory, resource: str
) -> None:
    first, second = factory(), factory()
    grant = first.acquire(resource, LONG_TTL_MS, WAIT_S)
    assert second.acquire_nowait(resource, LONG_TTL_MS) is None
    assert first.release(grant)
    after = second.acquire_nowait(resource, LONG_TTL_MS)
    assert after is not None
    assert after.token > grant.token


def test_acquire_times_out_and_counts_it(factory: Factory, resource: str) -> None:
    holder, waiter = factory(), factory()
    holder.acquire(resource, LONG_TTL_MS, WAIT_S)
    with pytest.raises(LockTimeoutError):
        waiter.acquire(resource, LONG_TTL_MS, timeout_s=0.05)
    stats = waiter.statistics()
    assert (stats.timeouts, stats.waits, stats.acquired) == (1, 1, 0)
    assert stats.wait_ns >= 50_000_000


def test_release_by_a_former_owner_leaves_the_new_owners_lock_intact(
    factory: Factory, resource: str
) -> None:
    old_manager, new_manager = factory(), factory()
    old = old_manager.acquire(resource, 100, WAIT_S)
    new = new_manager.acquire(resource, LONG_TTL_MS, WAIT_S)  # waits until `old` expires
    assert new.token > old.token
    assert old_manager.release(old) is False
    assert old_manager.statistics().release_not_owner == 1
    assert new_manager.acquire_nowait(resource, LONG_TTL_MS) is None  # still held by `new`
    assert new_manager.release(new) is True


def test_extend_keeps_the_lock_past_its_first_ttl(factory: Factory, resource: str) -> None:
    holder, waiter = factory(), factory()
    grant = holder.acquire(resource, 500, WAIT_S)
    assert holder.extend(grant, LONG_TTL_MS)
    with pytest.raises(LockTimeoutError):
        waiter.acquire(resource, LONG_TTL_MS, timeout_s=1.0)  # twice the first TTL
    assert holder.statistics().extended == 1
    assert holder.release(grant)


def test_extend_after_expiry_fails_and_marks_the_grant_lost(
    factory: Factory, resource: str
) -> None:
    holder, other = factory(), factory()
    grant = holder.acquire(resource, 100, WAIT_S)
    newer = other.acquire(resource, LONG_TTL_MS, WAIT_S)  # waits until `grant` expires
    assert holder.extend(grant, LONG_TTL_MS) is False
    assert grant.is_lost()
    assert holder.statistics().lost == 1
    assert other.acquire_nowait(resource, LONG_TTL_MS) is None
    assert other.release(newer)


def test_the_watchdog_keeps_a_lock_alive_past_its_ttl(factory: Factory, resource: str) -> None:
    holder, waiter = factory(watchdog=True), factory()
    grant = holder.acquire(resource, 500, WAIT_S)
    with pytest.raises(LockTimeoutError):
        waiter.acquire(resource, LONG_TTL_MS, timeout_s=1.5)  # three times the TTL
    assert not grant.is_lost()
    assert holder.statistics().extended >= 3
    assert holder.release(grant)
    assert holder.statistics().lost == 0


# -- faults of a single Redis --------------------------------------------------------------


def test_the_watchdog_reports_loss_when_redis_dies(resource: str) -> None:
    with ThrowawayRedis() as server:
        manager = RedisLockManager(server.url, watchdog=True)
        try:
            grant = manager.acquire(resource, 300, WAIT_S)
            server.kill()
            assert grant.lost.wait(timeout=10)
            assert manager.statistics().lost == 1
        finally:
            manager.close()


def test_redis_restart_without_persistence_repeats_tokens_and_forgets_locks(
    resource: str,
) -> None:
    with ThrowawayRedis() as server:
        manager = RedisLockManager(server.url)
        try:
            assert manager.release(manager.acquire(resource, LONG_TTL_MS, WAIT_S))
            held = manager.acquire(resource, LONG_TTL_MS, WAIT_S)
            assert held.token == 2
            server.kill()
            with pytest.raises(LockServiceError):
                manager.acquire(resource, LONG_TTL_MS, WAIT_S)
            with pytest.raises(LockServiceError):
                manager.acquire_nowait(resource, LONG_TTL_MS)
            server.restart()
            again = manager.acquire(resource, LONG_TTL_MS, timeout_s=0.5)
        finally:
            manager.close()
    # `held` was never released, yet the lock was granted again: two holders at once. And the
    # new grant's token repeats an old one (the counter was forgotten). A lock alone cannot
    # keep the data safe here; storage, which has already seen token 2 for this resource,
    # must refuse the write that carries token 1.
    assert again.token == 1
    assert again.token < held.token


def test_redis_restart_with_persistence_keeps_locks_and_tokens(resource: str) -> None:
    with ThrowawayRedis(persistent=True) as server:
        manager = RedisLockManager(server.url)
        try:
            held = manager.acquire(resource, LONG_TTL_MS, WAIT_S)
            server.kill()
            server.restart()
            assert manager.acquire_nowait(resource, LONG_TTL_MS) is None
            assert manager.release(held)
            after = manager.acquire(resource, LONG_TTL_MS, WAIT_S)
        finally:
            manager.close()
    assert after.token == held.token + 1


# -- Redlock --------------------------------------------------------------------------------


@pytest.fixture
def redlock(redlock_servers: list[ThrowawayRedis]) -> Iterator[RedlockManager]:
    manager = RedlockManager([s.url for s in redlock_servers])
    yield manager
    manager.close()
    for server in redlock_servers:
        if not server.running:
            server.restart()


def test_redlock_grants_validity_less_than_the_ttl(redlock: RedlockManager, resource: str) -> None:
    grant = redlock.acquire(resource, 10_000, WAIT_S)
    assert 0 < grant.ttl_ms < 10_000 - 100 - 2  # minus the clock-drift allowance


def test_redlock_works_with_one_of_three_servers_down(
    redlock: RedlockManager, redlock_servers: list[ThrowawayRedis], resource: str
) -> None:
    before = redlock.acquire(resource, LONG_TTL_MS, WAIT_S)
    assert redlock.release(before)
    redlock_servers[0].kill()
    during = redlock.acquire(resource, LONG_TTL_MS, WAIT_S)
    assert during.token > before.token
    other = RedlockManager([s.url for s in redlock_servers])
    try:
        assert other.acquire_nowait(resource, LONG_TTL_MS) is None  # still exclusive
    finally:
        other.close()
    assert redlock.release(during)


def test_redlock_fails_with_two_of_three_servers_down(
    redlock: RedlockManager, redlock_servers: list[ThrowawayRedis], resource: str
) -> None:
    redlock_servers[0].kill()
    redlock_servers[2].kill()
    with pytest.raises((LockServiceError, LockTimeoutError)):
        redlock.acquire(resource, LONG_TTL_MS, timeout_s=0.5)
    # the one live server must not be left holding a lock nobody was granted
    live = redis.Redis.from_url(redlock_servers[1].url)
    try:
        assert live.exists(lock_key(resource)) == 0
    finally:
        live.close()


def test_redlock_tokens_grow_across_different_majorities(
    redlock: RedlockManager, redlock_servers: list[ThrowawayRedis], resource: str
) -> None:
    # r1 r2 r3 are blocked in turn by a foreign owner's key, so that failed attempts push r1's
    # counter far ahead and the two grants below use majorities that share only r2. The plain
    # maximum of the majority's counters would give the later grant the smaller token.
    nodes = [redis.Redis.from_url(s.url) for s in redlock_servers]
    key = lock_key(resource)
    try:
        for node in nodes[1:]:
            node.set(key, "foreign", px=LONG_TTL_MS)
        for _ in range(20):
            assert redlock.acquire_nowait(resource, LONG_TTL_MS) is None
        assert int(nodes[0].get(fence_key(resource)) or 0) == 20
        nodes[1].delete(key)
        first = redlock.acquire(resource, LONG_TTL_MS, WAIT_S)  # on r1 r2
        assert first.token == 21
        assert redlock.release(first)
        nodes[0].set(key, "foreign", px=LONG_TTL_MS)
        nodes[2].delete(key)
        second = redlock.acquire(resource, LONG_TTL_MS, WAIT_S)  # on r2 r3
        assert second.token > first.token
        assert redlock.release(second)
    finally:
        for node in nodes:
            node.delete(key)
            node.close()
