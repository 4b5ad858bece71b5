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
import socket
import subprocess
import time
from pathlib import Path

from lastseat.adapters.process import ThrowawayProcess, free_port
from lastseat.domain.errors import LockServiceError

__all__ = ["ThrowawayZooKeeper", "four_letter_word", "free_port"]

ZOOKEEPER_JAR = Path("/usr/share/java/zookeeper.jar")
# A logging backend, if the machine has one: without it SLF4J prints one warning and drops the
# server's log, which is only needed when the server fails to start.
SLF4J_SIMPLE_JAR = Path("/usr/share/java/slf4j-simple.jar")
MAIN_CLASS = "org.apache.zookeeper.server.ZooKeeperServerMain"
_START_TIMEOUT_S = 60.0
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


def four_letter_word(port: int, word: str, timeout_s: float = 1.0) -> str:
    """Send a ZooKeeper four-letter command (`ruok`, `srvr`) and return the whole answer."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout_s) as sock:
        sock.sendall(word.encode("ascii"))
        chunks = []
        while chunk := sock.recv(4096):
            chunks.append(chunk)
    return b"".join(chunks).decode("utf-8", errors="replace")


class ThrowawayZooKeeper(ThrowawayProcess):
    """One standalone ZooKeeper server in a temp dir; a context manager that removes it.

    After `kill()`, `restart()` brings it back on the same port and data: sessions that have
    not timed out meanwhile survive, as on a real server restart.
    """

    dir_prefix = "lastseat-zk-"
    label = "ZooKeeper"
    error = LockServiceError

    def __init__(
        self,
        tick_time_ms: int = 200,
        min_session_timeout_ms: int = 400,
        max_session_timeout_ms: int = 20_000,
    ) -> None:
        super().__init__()
        self.tick_time_ms = tick_time_ms
        self.min_session_timeout_ms = min_session_timeout_ms
        self.max_session_timeout_ms = max_session_timeout_ms

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

    # -- internals ------------------------------------------------------------------------

    def _write_config(self) -> None:
        data = self._dir() / "data"
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
        (self._dir() / "zoo.cfg").write_text(text)

    def _launch(self) -> None:
        self._write_config()
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
            str(self._dir() / "zoo.cfg"),
        ]
        # Output goes to a file, not a pipe nobody reads (a full pipe would stall the server).
        with (self._dir() / "server.log").open("ab") as log:
            self._process = subprocess.Popen(  # noqa: S603 - fixed arguments, no shell
                command,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=self._dir(),
            )

    def _wait_ready(self) -> bool:
        deadline = time.monotonic() + _START_TIMEOUT_S
        while time.monotonic() < deadline:
            if not self.running:
                return False  # exited while starting: e.g. another process took the port
            # `ruok` answers `imok` before the server serves sessions; `srvr` reports a mode
            # only once it does.
            try:
                if "Mode: " in four_letter_word(self.port, "srvr"):
                    return True
            except OSError:
                pass  # not listening yet
            time.sleep(_POLL_S)
        return False

    def _log_tail(self) -> str:
        log = self._root / "server.log" if self._root else None
        return log.read_text(errors="replace")[-2000:] if log and log.exists() else ""
