"""A server process started for tests and the race lab: a temp dir, a free port, a lifecycle.

`start()` makes the temp dir and starts the server on a free 127.0.0.1 port (trying again if
another process takes the port between choosing it and the server's bind); `kill()` is a
crash (SIGKILL, directory and port kept); `restart()` brings it back on the same port and
data; `stop()` ends it and removes the directory. Subclasses say how to launch the program
and how to tell it is ready.
"""

from __future__ import annotations

import shutil
import signal
import socket
import subprocess
import tempfile
from pathlib import Path
from types import TracebackType
from typing import Self

from lastseat.domain.errors import LastseatError

START_TRIES = 3
STOP_TIMEOUT_S = 10.0


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class ThrowawayProcess:
    """One server process in its own temp dir; a context manager that removes it on exit."""

    dir_prefix = "lastseat-"
    label = "the server"
    error: type[LastseatError] = LastseatError

    def __init__(self) -> None:
        self.port = 0
        self._root: Path | None = None
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def running(self) -> bool:
        """True while the process is alive."""
        return self._process is not None and self._process.poll() is None

    def start(self) -> Self:
        """Make a temp dir and start the server on a free port; return once it is ready."""
        self._root = Path(tempfile.mkdtemp(prefix=self.dir_prefix))
        try:
            self._start_on_a_free_port()
        except BaseException:
            self.stop()
            raise
        return self

    def kill(self) -> None:
        """SIGKILL the server, as a crash would; its directory and port are kept for restart()."""
        process, self._process = self._process, None
        self._forget(process)
        if process is not None and process.poll() is None:
            process.send_signal(signal.SIGKILL)
            process.wait(STOP_TIMEOUT_S)

    def restart(self) -> None:
        """Start the server again on the same port and data (after kill(), or stopping first)."""
        if self._root is None or not self.port:
            raise self.error(f"restart() needs {self.label} to have been started")
        self._terminate()
        self._launch()
        if not self._wait_ready():
            raise self.error(f"{self.label} did not come back on port {self.port}")

    def stop(self) -> None:
        """Stop the server and remove its directory."""
        root, self._root = self._root, None
        try:
            self._terminate()
        finally:
            self.port = 0
            if root is not None:
                shutil.rmtree(root, ignore_errors=True)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    # -- for subclasses ---------------------------------------------------------------------

    def _launch(self) -> None:
        """Start the program on `self.port` and set `self._process`."""
        raise NotImplementedError

    def _wait_ready(self) -> bool:
        """Wait until the program serves; False if it died or never answered."""
        raise NotImplementedError

    def _log_tail(self) -> str:
        """The end of the program's log, for error messages."""
        return ""

    def _forget(self, process: subprocess.Popen[bytes] | None) -> None:
        """The process is being ended on purpose (a hook for subclasses that watch it)."""

    # -- internals ------------------------------------------------------------------------

    def _dir(self) -> Path:
        if self._root is None:
            raise self.error(f"{self.label} is not started")
        return self._root

    def _start_on_a_free_port(self) -> None:
        # Another process may take the port between free_port() and the server's bind.
        for _ in range(START_TRIES):
            self.port = free_port()
            self._launch()
            if self._wait_ready():
                return
            self._terminate()
        self.port = 0
        raise self.error(f"{self.label} did not start: {self._log_tail()}")

    def _terminate(self) -> None:
        process, self._process = self._process, None
        self._forget(process)
        if process is None or process.poll() is not None:
            return
        process.send_signal(signal.SIGCONT)  # a stopped (SIGSTOP) process never acts on SIGTERM
        process.terminate()
        try:
            process.wait(STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(STOP_TIMEOUT_S)
