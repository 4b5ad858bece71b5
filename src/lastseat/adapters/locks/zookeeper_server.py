"""A throwaway ZooKeeper server for tests and the race lab, from Debian's `zookeeper` package.

Debian's `libzookeeper-java` ships `/usr/share/java/zookeeper.jar`, whose manifest `Class-Path`
names every jar it needs, so `java -cp zookeeper.jar ZooKeeperServerMain zoo.cfg` runs a
standalone server without the package's init scripts (which expect `/etc/zookeeper` and
`/var/lib/zookeeper`). The server listens on a free 127.0.0.1 port only, keeps its data in a
fresh temp dir, runs no admin (Jetty) server, and uses a short tick so that session expiry —
the ZooKeeper lock's lease — takes well under a second in tests. `stop()` removes everything.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from types import TracebackType

from lastseat.domain.errors import LockServiceError

ZOOKEEPER_JAR = Path("/usr/share/java/zookeeper.jar")
# A logging backend, if the machine has one: without it SLF4J prints one warning and drops the
# server's log, which is only needed when the server fails to start.
SLF4J_SIMPLE_JAR = Path("/usr/share/java/slf4j-simple.jar")
MAIN_CLASS = "org.apache.zookeeper.server.ZooKeeperServerMain"
_START_TRIES = 3
_START_TIMEOUT_S = 60.0
_STOP_TIMEOUT_S = 10.0
_POLL_S = 0.05


def java() -> str:
    """The `java` program to run the server with."""
    home = os.environ.get("JAVA_HOME")
    found = str(Path(home) / "bin" / "java") if home else shutil.which("java")
    if not found or not Path(found).exists():
        raise LockServiceError("java is not installed (apt-get install zookeeper brings it)")
    return found


def classpath() -> str:
    """The server's classpath: Debian's ZooKeeper jar (its manifest names the rest)."""
    if not ZOOKEEPER_JAR.exists():
        raise LockServiceError(f"{ZOOKEEPER_JAR} is missing: apt-get install zookeeper")
    jars = [ZOOKEEPER_JAR, SLF4J_SIMPLE_JAR] if SLF4J_SIMPLE_JAR.exists() else [ZOOKEEPER_JAR]
    return os.pathsep.join(str(jar) for jar in jars)


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def four_letter_word(port: int, word: str, timeout_s: float = 1.0) -> str:
    """Send a ZooKeeper four-letter command (`ruok`, `srvr`) and return the whole answer."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout_s) as sock:
        sock.sendall(word.encode("ascii"))
        chunks = []
        while chunk := sock.recv(4096):
            chunks.append(chunk)
    return b"".join(chunks).decode("utf-8", errors="replace")


class ThrowawayZooKeeper:
    """One standalone ZooKeeper server in a temp dir; a context manager that removes it."""

    def __init__(
        self,
        tick_time_ms: int = 200,
        min_session_timeout_ms: int = 400,
        max_session_timeout_ms: int = 20_000,
    ) -> None:
        self.tick_time_ms = tick_time_ms
        self.min_session_timeout_ms = min_session_timeout_ms
        self.max_session_timeout_ms = max_session_timeout_ms
        self.port = 0
        self._root: Path | None = None
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def hosts(self) -> str:
        """The connection string for clients: `127.0.0.1:<port>`."""
        if not self.port:
            raise LockServiceError("the throwaway ZooKeeper server is not running")
        return f"127.0.0.1:{self.port}"

    @property
    def pid(self) -> int:
        """The server process's id (for fault injection: SIGSTOP, SIGKILL)."""
        if self._process is None:
            raise LockServiceError("the throwaway ZooKeeper server is not running")
        return self._process.pid

    def start(self) -> ThrowawayZooKeeper:
        """Make a data dir and start the server on a free port; return once it answers."""
        self._root = Path(tempfile.mkdtemp(prefix="lastseat-zk-"))
        try:
            self._start_on_a_free_port()
        except BaseException:
            self.stop()
            raise
        return self

    def restart(self) -> None:
        """Start the server again on the same port and data (after `kill()`); sessions that
        have not timed out meanwhile survive, as on a real server restart."""
        if self._root is None or not self.port:
            raise LockServiceError("the throwaway ZooKeeper server was never started")
        self._end(signal.SIGKILL)
        self._launch()
        self._wait_until_ready()

    def kill(self) -> None:
        """Crash the server (SIGKILL) and keep its data dir, so that `restart()` can follow."""
        self._end(signal.SIGKILL)

    def stop(self) -> None:
        """Stop the server (SIGTERM, then SIGKILL) and remove its directory."""
        root, self._root = self._root, None
        try:
            self._end(signal.SIGTERM)
        finally:
            self.port = 0
            if root is not None:
                shutil.rmtree(root, ignore_errors=True)

    def __enter__(self) -> ThrowawayZooKeeper:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    # -- internals ------------------------------------------------------------------------

    @property
    def _dir(self) -> Path:
        assert self._root is not None  # only called between start() and stop()
        return self._root

    def _start_on_a_free_port(self) -> None:
        # Another process may take the port between free_port() and the server's bind; the
        # server then exits, and we try another port.
        for attempt in range(_START_TRIES):
            self.port = free_port()
            self._write_config()
            self._launch()
            try:
                self._wait_until_ready()
                return
            except LockServiceError:
                self._end(signal.SIGKILL)
                if attempt == _START_TRIES - 1:
                    raise

    def _write_config(self) -> None:
        data = self._dir / "data"
        data.mkdir(exist_ok=True)
        settings = {
            "tickTime": self.tick_time_ms,
            "minSessionTimeout": self.min_session_timeout_ms,
            "maxSessionTimeout": self.max_session_timeout_ms,
            "dataDir": data,
            "clientPortAddress": "127.0.0.1",
            "clientPort": self.port,
            "maxClientCnxns": 0,
            "admin.enableServer": "false",
            "4lw.commands.whitelist": "ruok,srvr,stat,cons",
            # Durability is not under test; an fsync per lock grant only slows the tests.
            "forceSync": "no",
        }
        text = "".join(f"{key}={value}\n" for key, value in settings.items())
        (self._dir / "zoo.cfg").write_text(text)

    def _launch(self) -> None:
        command = [
            java(),
            "-Xmx256m",
            "-XX:+UseSerialGC",
            "-XX:TieredStopAtLevel=1",
            "-Dzookeeper.admin.enableServer=false",
            "-Dorg.slf4j.simpleLogger.defaultLogLevel=warn",
            "-cp",
            classpath(),
            MAIN_CLASS,
            str(self._dir / "zoo.cfg"),
        ]
        # Output goes to a file, not a pipe nobody reads (a full pipe would stall the server).
        with (self._dir / "server.log").open("ab") as log:
            self._process = subprocess.Popen(  # noqa: S603 - fixed arguments, no shell
                command,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=self._dir,
            )

    def _wait_until_ready(self) -> None:
        deadline = time.monotonic() + _START_TIMEOUT_S
        while time.monotonic() < deadline:
            process = self._process
            if process is None or process.poll() is not None:
                raise LockServiceError(f"ZooKeeper exited while starting:\n{self._log_tail()}")
            # `ruok` answers `imok` before the server serves sessions; `srvr` reports a mode
            # only once it does.
            try:
                if "Mode: " in four_letter_word(self.port, "srvr"):
                    return
            except OSError:
                pass  # not listening yet
            time.sleep(_POLL_S)
        raise LockServiceError(f"ZooKeeper did not answer within 60 s:\n{self._log_tail()}")

    def _end(self, sig: signal.Signals) -> None:
        process, self._process = self._process, None
        if process is None or process.poll() is not None:
            return
        if sig != signal.SIGKILL:
            # A stopped (SIGSTOP) server would never act on SIGTERM.
            process.send_signal(signal.SIGCONT)
        process.send_signal(sig)
        try:
            process.wait(_STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(_STOP_TIMEOUT_S)

    def _log_tail(self) -> str:
        log = self._root / "server.log" if self._root else None
        return log.read_text(errors="replace")[-2000:] if log and log.exists() else ""
