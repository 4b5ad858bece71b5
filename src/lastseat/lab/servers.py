"""App-server processes for a race over HTTP: `lastseat serve` on free ports, one database.

Each server is a separate OS process with its own connection pool and availability cache, as
behind a load balancer; the race lab's buyers spread their requests over them round-robin.
A server can be crashed and brought back on its port, or frozen for a while (lab.nemesis).
"""

from __future__ import annotations

import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
from prometheus_client.parser import text_string_to_metric_families

from lastseat.adapters.process import ThrowawayProcess
from lastseat.bootstrap import LockServices, PaymentSettings
from lastseat.domain.errors import StoreError

START_TIMEOUT_S = 60.0


class AppServer(ThrowawayProcess):
    """One `lastseat serve` process; `kill()` + `restart()` crash it and bring it back on the
    same port (what a process supervisor does), `pause()` / `resume()` freeze it (SIGSTOP)."""

    dir_prefix = "lastseat-serve-"
    label = "the app server"
    error = StoreError

    def __init__(self, env: dict[str, str]) -> None:
        super().__init__()
        self._env = env

    @property
    def url(self) -> str:
        """The server's base URL."""
        return f"http://127.0.0.1:{self.port}"

    @property
    def pid(self) -> int:
        """The current process id (a restart changes it); 0 while not running."""
        return self._process.pid if self._process is not None else 0

    def pause(self) -> None:
        """Freeze the process (SIGSTOP): connections stay open, nothing is answered."""
        if self._process is not None:
            self._process.send_signal(signal.SIGSTOP)

    def resume(self) -> None:
        """Let a paused process run again (SIGCONT)."""
        if self._process is not None:
            self._process.send_signal(signal.SIGCONT)

    def _launch(self) -> None:
        command = [
            sys.executable,
            "-m",
            "lastseat",
            "serve",
            "--host",
            "127.0.0.1",
            "--port",
            str(self.port),
            "--workers",
            "1",
        ]
        # The log goes to a file, not a pipe: an unread pipe fills up and stalls the server.
        with self._log_path().open("ab") as log:
            self._process = subprocess.Popen(  # noqa: S603 - our own interpreter and arguments
                command, env=self._env, stdout=subprocess.DEVNULL, stderr=log
            )

    def _wait_ready(self) -> bool:
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            if self._process is None or self._process.poll() is not None:
                return False
            try:
                if httpx.get(f"{self.url}/ready", timeout=2.0).status_code == 200:
                    return True
            except httpx.TransportError:
                pass
            time.sleep(0.05)  # polling a server that is starting up, not ordering a race
        return False

    def _log_tail(self) -> str:
        try:
            lines = self._log_path().read_text(errors="replace").strip().splitlines()
        except OSError:
            return "?"
        return lines[-1] if lines else "?"

    def _log_path(self) -> Path:
        return self._dir() / "server.log"


@dataclass(frozen=True, slots=True)
class ServerFleet:
    """Running servers and the credentials the lab uses with them."""

    urls: tuple[str, ...]
    admin_key: str
    token_secret: bytes
    servers: tuple[AppServer, ...] = ()

    @property
    def pids(self) -> tuple[int, ...]:
        """Each server's current process id."""
        return tuple(server.pid for server in self.servers)

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
    idempotency_lease_ms: int = 0,
) -> Iterator[ServerFleet]:
    """Start `count` servers over `db`, wait until each answers /ready, stop them on exit.

    `idempotency_lease_ms` > 0 shortens the servers' Idempotency-Key lease, so that a key
    whose server was killed is taken over within a short race."""
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
    if idempotency_lease_ms:
        env["LASTSEAT_IDEMPOTENCY_LEASE_MS"] = str(idempotency_lease_ms)
    servers = tuple(AppServer(env) for _ in range(count))
    with ExitStack() as stack:
        for server in servers:
            stack.callback(server.stop)
        # Start-up is mostly imports and waiting for /ready: the servers start side by side.
        with ThreadPoolExecutor(max(1, count)) as starting:
            for started in [starting.submit(server.start) for server in servers]:
                started.result()
        yield ServerFleet(
            tuple(server.url for server in servers), admin_key, token_secret.encode(), servers
        )


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
    """The strategy counters of every server, summed (the largest batch: the largest), read
    from their /metrics."""
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
                elif name == "max_batch":  # a gauge: the largest of any server
                    totals[name] = max(totals.get(name, 0.0), sample.value)
    scale = {"lock_wait_seconds": ("lock_wait_ns", 1e9), "lock_held_seconds": ("lock_held_ns", 1e9)}
    result: dict[str, int] = {}
    for name, value in totals.items():
        key, factor = scale.get(name, (name, 1.0))
        result[key] = int(value * factor)
    return result
