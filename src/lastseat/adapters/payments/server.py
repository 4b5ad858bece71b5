"""A throwaway payment provider process (`lastseat payments serve`) for tests and the race lab.

The provider runs as its own OS process on a free 127.0.0.1 port, with its SQLite file and
log in a fresh temp dir and a random api key passed through the environment (never the
command line). `kill()` (SIGKILL, data kept) and `restart()` (same port, same db) are there for
crash tests; `stop()` removes everything. A finalizer kills the process if the owner forgets,
so no provider outlives the interpreter that started it.
"""

from __future__ import annotations

import os
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import weakref
from collections.abc import Mapping
from pathlib import Path
from types import TracebackType

import httpx

from lastseat.adapters.locks.redis_server import free_port
from lastseat.domain.errors import LastseatError

API_KEY_ENV = "LASTSEAT_PROVIDER_API_KEY"
_START_TRIES = 3
_READY_TIMEOUT_S = 20.0
_STOP_TIMEOUT_S = 10.0


class ProviderProcessError(LastseatError):
    """The throwaway provider process could not be started or restarted."""


def _end(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.kill()
        process.wait(_STOP_TIMEOUT_S)


class ThrowawayProvider:
    """One provider process in a temp dir; a context manager that removes it on exit.

    `faults` are `lastseat payments serve` flags without dashes, e.g. `{"decline_rate": 1.0,
    "hang_ms": 5000, "outage_mode": "503", "outage_ms": 2000}`; True turns a switch on.
    """

    def __init__(
        self, *, seed: int = 0, faults: Mapping[str, float | str | bool] | None = None
    ) -> None:
        self.seed = seed
        self.faults: dict[str, float | str | bool] = dict(faults or {})
        self.api_key = secrets.token_urlsafe(24)
        self.port = 0
        self._root: Path | None = None
        self._process: subprocess.Popen[bytes] | None = None
        self._finalizer: weakref.finalize[[subprocess.Popen[bytes]], ThrowawayProvider] | None = (
            None
        )

    @property
    def url(self) -> str:
        """The provider's base URL."""
        if not self.port:
            raise ProviderProcessError("the throwaway provider is not running")
        return f"http://127.0.0.1:{self.port}"

    @property
    def db_path(self) -> Path:
        """The provider's SQLite file."""
        return self._dir() / "provider.db"

    @property
    def log_path(self) -> Path:
        """The provider process's log (stdout and stderr)."""
        return self._dir() / "provider.log"

    @property
    def pid(self) -> int | None:
        """The provider's process id while it runs (for SIGSTOP-style fault tests)."""
        return self._process.pid if self.running and self._process is not None else None

    @property
    def running(self) -> bool:
        """True while the process is alive."""
        return self._process is not None and self._process.poll() is None

    def start(self) -> ThrowawayProvider:
        """Make a temp dir and start the provider on a free port; return once /healthz answers."""
        self._root = Path(tempfile.mkdtemp(prefix="lastseat-provider-"))
        try:
            self._start_on_a_free_port()
        except BaseException:
            self.stop()
            raise
        return self

    def kill(self) -> None:
        """SIGKILL the provider, as a crash would; its db and port are kept for restart()."""
        process, self._process = self._process, None
        self._detach_finalizer()
        if process is not None and process.poll() is None:
            process.send_signal(signal.SIGKILL)
            process.wait(_STOP_TIMEOUT_S)

    def restart(self) -> None:
        """Start the provider again on the same port and db (after kill(), or stopping first)."""
        if self._root is None or not self.port:
            raise ProviderProcessError("restart() needs a provider that was started")
        self._terminate()
        self._launch()
        if not self._wait_ready():
            raise ProviderProcessError(f"the provider did not come back: {self._log_tail()}")

    def stop(self) -> None:
        """Stop the provider and remove its directory."""
        root, self._root = self._root, None
        try:
            self._terminate()
        finally:
            self.port = 0
            if root is not None:
                shutil.rmtree(root, ignore_errors=True)

    def __enter__(self) -> ThrowawayProvider:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    # -- internals ------------------------------------------------------------------------

    def _dir(self) -> Path:
        if self._root is None:
            raise ProviderProcessError("the throwaway provider is not started")
        return self._root

    def _start_on_a_free_port(self) -> None:
        # Another process may take the port between free_port() and the provider's bind.
        for _ in range(_START_TRIES):
            self.port = free_port()
            self._launch()
            if self._wait_ready():
                return
            self._terminate()
        self.port = 0
        raise ProviderProcessError(f"the provider did not start: {self._log_tail()}")

    def _arguments(self) -> list[str]:
        flags = []
        for name, value in self.faults.items():
            flag = "--" + name.replace("_", "-")
            if isinstance(value, bool):
                flags += [flag] if value else []  # an on/off switch, like --access-log
            else:
                flags.append(f"{flag}={value}")
        return [
            sys.executable,
            "-m",
            "lastseat",
            "payments",
            "serve",
            "--db",
            str(self.db_path),
            "--host",
            "127.0.0.1",
            "--port",
            str(self.port),
            "--seed",
            str(self.seed),
            "--exit-with-parent",  # a SIGKILLed test run leaves no provider behind
            *flags,
        ]

    def _launch(self) -> None:
        env = {**os.environ, API_KEY_ENV: self.api_key}
        # The log goes to a file, not a pipe: an unread pipe fills up and stalls the server.
        with self.log_path.open("ab") as log:
            self._process = subprocess.Popen(  # noqa: S603 - our own interpreter and arguments
                self._arguments(), env=env, stdin=subprocess.DEVNULL, stdout=log, stderr=log
            )
        self._finalizer = weakref.finalize(self, _end, self._process)

    def _wait_ready(self) -> bool:
        deadline = time.monotonic() + _READY_TIMEOUT_S
        while time.monotonic() < deadline:
            if not self.running:
                return False
            try:
                if httpx.get(f"{self.url}/healthz", timeout=1.0).status_code == 200:
                    return True
            except httpx.TransportError:
                pass
            time.sleep(0.05)  # polling a process that is starting up, not ordering a race
        return False

    def _terminate(self) -> None:
        process, self._process = self._process, None
        self._detach_finalizer()
        if process is None or process.poll() is not None:
            return
        process.terminate()
        try:
            process.wait(_STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(_STOP_TIMEOUT_S)

    def _detach_finalizer(self) -> None:
        if self._finalizer is not None:
            self._finalizer.detach()
            self._finalizer = None

    def _log_tail(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-2000:]
        except (OSError, ProviderProcessError):
            return ""
