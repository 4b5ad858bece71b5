"""App-server processes for a race over HTTP: `lastseat serve` on free ports, one database.

Each server is a separate OS process with its own connection pool and availability cache, as
behind a load balancer; the race lab's buyers spread their requests over them round-robin.
"""

from __future__ import annotations

import os
import secrets
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from typing import IO

import httpx
from prometheus_client.parser import text_string_to_metric_families

from lastseat.bootstrap import LockServices, PaymentSettings
from lastseat.domain.errors import StoreError

START_TIMEOUT_S = 60.0


@dataclass(frozen=True, slots=True)
class ServerFleet:
    """Running servers and the credentials the lab uses with them."""

    urls: tuple[str, ...]
    admin_key: str
    token_secret: bytes
    pids: tuple[int, ...] = ()

    def peak_rss_mb(self) -> tuple[float, ...]:
        """Each server process's peak resident memory so far (Linux VmHWM), in MB."""
        return tuple(_peak_rss_mb(pid) for pid in self.pids)


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def server_fleet(
    count: int,
    db: str,
    strategy: str,
    *,
    payment_delay_ms: float = 0.0,
    allow_unsafe: bool = True,
    locks: LockServices | None = None,
    payments: PaymentSettings | None = None,
    hold_ttl_s: int = 0,
) -> Iterator[ServerFleet]:
    """Start `count` servers over `db`, wait until each answers /ready, stop them on exit."""
    admin_key, token_secret = secrets.token_urlsafe(24), secrets.token_urlsafe(24)
    env = {
        **os.environ,
        "LASTSEAT_DB": db,
        "LASTSEAT_STRATEGY": strategy,
        "LASTSEAT_ALLOW_UNSAFE": "1" if allow_unsafe else "0",
        "LASTSEAT_ADMIN_KEY": admin_key,
        "LASTSEAT_TOKEN_SECRET": token_secret,
        "LASTSEAT_PAYMENT_DELAY_MS": f"{payment_delay_ms:g}",
        **(locks or LockServices()).as_env(),
        **(payments or PaymentSettings()).as_env(),
        # Servers reconcile unknown payments in the background, often enough for a race.
        "LASTSEAT_RECONCILE_INTERVAL_MS": "500",
    }
    if hold_ttl_s:
        env["LASTSEAT_HOLD_TTL_S"] = str(hold_ttl_s)
    with ExitStack() as stack:
        procs = [stack.enter_context(_server(env)) for _ in range(count)]
        for url, proc, log in procs:
            _wait_ready(url, proc, log)
        yield ServerFleet(
            tuple(url for url, _, _ in procs),
            admin_key,
            token_secret.encode(),
            tuple(proc.pid for _, proc, _ in procs),
        )


@contextmanager
def _server(env: dict[str, str]) -> Iterator[tuple[str, subprocess.Popen[str], IO[str]]]:
    port = free_port()
    command = [
        sys.executable,
        "-m",
        "lastseat",
        "serve",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--workers",
        "1",
    ]
    # The log goes to a file, not a pipe: an unread pipe fills up and stalls the server.
    with tempfile.TemporaryFile(mode="w+") as log:
        proc = subprocess.Popen(  # noqa: S603 - our own interpreter and arguments
            command, env=env, stdout=subprocess.DEVNULL, stderr=log, text=True
        )
        try:
            yield f"http://127.0.0.1:{port}", proc, log
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def _wait_ready(url: str, proc: subprocess.Popen[str], log: IO[str]) -> None:
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            log.seek(0)
            error = log.read().strip().splitlines()
            raise StoreError(f"the app server at {url} exited: {error[-1] if error else '?'}")
        try:
            if httpx.get(f"{url}/ready", timeout=2.0).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.05)  # polling a server that is starting up, not ordering a race
    raise StoreError(f"the app server at {url} did not become ready in {START_TIMEOUT_S:.0f} s")


def _peak_rss_mb(pid: int) -> float:
    try:
        with open(f"/proc/{pid}/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def strategy_statistics(urls: tuple[str, ...]) -> dict[str, int]:
    """The strategy counters of every server, summed, read from their /metrics."""
    totals: dict[str, float] = {}
    for url in urls:
        text = httpx.get(f"{url}/metrics", timeout=10.0).text
        for family in text_string_to_metric_families(text):
            name = family.name.removeprefix("lastseat_strategy_")
            if name == family.name:
                continue
            for sample in family.samples:
                if sample.name.endswith("_total"):
                    totals[name] = totals.get(name, 0.0) + sample.value
    scale = {"lock_wait_seconds": ("lock_wait_ns", 1e9), "lock_held_seconds": ("lock_held_ns", 1e9)}
    result: dict[str, int] = {}
    for name, value in totals.items():
        key, factor = scale.get(name, (name, 1.0))
        result[key] = int(value * factor)
    return result
