"""ZooKeeper lock test helpers: the `zk_server` fixture's server, and process entry points
(importable by spawned children) for the cross-process races and the paused-holder test."""

from __future__ import annotations

import contextlib
import os
import shutil
import time
from collections.abc import Callable, Iterator
from multiprocessing.queues import Queue
from multiprocessing.synchronize import Barrier
from pathlib import Path
from typing import Any

import pytest

from lastseat.adapters.locks.zookeeper_lock import ZooKeeperLockManager
from lastseat.adapters.locks.zookeeper_server import ZOOKEEPER_JAR, ThrowawayZooKeeper

SESSION_TIMEOUT_S = 1.0  # the server allows 0.4 s and up (tickTime 200 ms)
WAIT_S = 30.0  # generous bounds for a busy CI machine; never reached when things work


def zookeeper_installed() -> bool:
    """True when Debian's ZooKeeper jar and a java to run it are on this machine."""
    return ZOOKEEPER_JAR.exists() and shutil.which("java") is not None


@contextlib.contextmanager
def throwaway_zookeeper() -> Iterator[ThrowawayZooKeeper]:
    """A server for a fixture; skipped outside CI when ZooKeeper is not installed, never in CI
    (`.ci/run` installs it, and a server that cannot start is an error, not a skip)."""
    if not zookeeper_installed() and os.environ.get("CI") != "true":
        pytest.skip("ZooKeeper is not installed (apt-get install zookeeper)")
    with ThrowawayZooKeeper() as server:
        yield server


def eventually(condition: Callable[[], bool], what: str, timeout_s: float = WAIT_S) -> None:
    """Wait for a state the test cannot be told about by an event (a connection's state)."""
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting until {what}")
        time.sleep(0.01)


def critical_section(marker: Path, log: Path, token: int) -> bool:
    """Enter, note the token, leave; False if another holder was inside at the same time.

    The marker file is created exclusively on entry and removed on exit, so an overlapping
    holder in any process finds it; the log's line order is the order of the grants.
    """
    try:
        fd = os.open(marker, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
    except FileExistsError:
        return False
    os.close(fd)
    with log.open("a") as out:
        out.write(f"{token}\n")
    marker.unlink()
    return True


def lock_repeatedly(
    hosts: str, resource: str, rounds: int, directory: str, barrier: Barrier
) -> dict[str, int]:
    """One process, one client: take the lock `rounds` times; (exclusive entries, counters)."""
    manager = ZooKeeperLockManager(hosts, SESSION_TIMEOUT_S * 10)
    marker, log = Path(directory) / "inside", Path(directory) / "tokens"
    exclusive = 0
    try:
        barrier.wait(WAIT_S)
        for _ in range(rounds):
            grant = manager.acquire(resource, 1_000, WAIT_S)
            exclusive += critical_section(marker, log, grant.token)
            assert manager.release(grant)
        return {"exclusive": exclusive, **manager.statistics().as_dict()}
    finally:
        manager.close()


def hold_until_lost(hosts: str, resource: str, reports: Queue[Any]) -> None:
    """Take the lock, report the token, then wait to learn the lock is lost and report that.

    The test stops this process (SIGSTOP) right after the first report and lets it run again
    once another client holds the lock.
    """
    manager = ZooKeeperLockManager(hosts, SESSION_TIMEOUT_S)
    try:
        grant = manager.acquire(resource, 1_000, WAIT_S)
        reports.put(("granted", grant.token))
        learned = grant.lost.wait(WAIT_S)
        reports.put(
            (
                "woke",
                {
                    "learned_lost": learned,
                    "extend": manager.extend(grant, 1_000),
                    "release": manager.release(grant),
                    **manager.statistics().as_dict(),
                },
            )
        )
    finally:
        manager.close()
