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
import subprocess
import sys
import time
import weakref
from collections.abc import Mapping
from pathlib import Path

import httpx

from lastseat.adapters.process import STOP_TIMEOUT_S, ThrowawayProcess
from lastseat.domain.errors import LastseatError

API_KEY_ENV = "LASTSEAT_PROVIDER_API_KEY"
_READY_TIMEOUT_S = 20.0


class ProviderProcessError(LastseatError):
    """The throwaway provider process could not be started or restarted."""


def _end(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.kill()
        process.wait(STOP_TIMEOUT_S)


class ThrowawayProvider(ThrowawayProcess):
    """One provider process in a temp dir; a context manager that removes it on exit.

    `faults` are `lastseat payments serve` flags without dashes, e.g. `{"decline_rate": 1.0,
    "hang_ms": 5000, "outage_mode": "503", "outage_ms": 2000}`; True turns a switch on.
    """

    dir_prefix = "lastseat-provider-"
    label = "the provider"
    error = ProviderProcessError

    def __init__(
        self, *, seed: int = 0, faults: Mapping[str, float | str | bool] | None = None
    ) -> None:
        super().__init__()
        self.seed = seed
        self.faults: dict[str, float | str | bool] = dict(faults or {})
        self.api_key = secrets.token_urlsafe(24)
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

    # -- internals ------------------------------------------------------------------------

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

    def _forget(self, process: subprocess.Popen[bytes] | None) -> None:
        self._detach_finalizer()

    def _detach_finalizer(self) -> None:
        if self._finalizer is not None:
            self._finalizer.detach()
            self._finalizer = None

    def _log_tail(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-2000:]
        except (OSError, ProviderProcessError):
            return ""
