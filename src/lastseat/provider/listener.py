"""The provider process: uvicorn on a listening socket we own, so an outage can really refuse.

A "refuse" outage must look like a dead host to the caller, not like a slow one: during the
window nothing accepts on the port, so a connect gets ECONNREFUSED at once. We close the
listening socket (and every idle keep-alive connection, or a pooled client would keep talking
to us through the window), then bind a new one on the same port when the window ends::

    t0  PUT /_faults {"outage": {"mode": "refuse", "for_ms": 500}}
        -> listener closed, idle connections closed, the PUT is still answered
    t0+ connect() -> ECONNREFUSED                   (counted: refused_windows per window)
    t1  window over -> new listener on the same port; requests are served again

Everything runs on uvicorn's event loop, so closing and re-opening cannot race each other.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket

import uvicorn

from lastseat.provider.app import create_app
from lastseat.provider.faults import Faults, OutageMode
from lastseat.provider.settings import GRACEFUL_SHUTDOWN_S, ProviderSettings
from lastseat.provider.store import ProviderStore

_REBIND_TRIES = 100
_REBIND_PAUSE_S = 0.05
# uvicorn's own logger: its handlers are the ones configured in this process.
logger = logging.getLogger("uvicorn.error")


def bind_socket(host: str, port: int, backlog: int) -> socket.socket:
    """A listening TCP socket on host:port (SO_REUSEADDR, so a re-bind after close works)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        sock.listen(backlog)
    except BaseException:
        sock.close()
        raise
    return sock


class ProviderServer(uvicorn.Server):
    """A uvicorn server whose listener can be taken away for a while and brought back."""

    def __init__(self, config: uvicorn.Config, faults: Faults, settings: ProviderSettings) -> None:
        super().__init__(config)
        self.faults = faults
        self.settings = settings
        self._reopen_timer: asyncio.TimerHandle | None = None
        self._reopen_task: asyncio.Task[None] | None = None
        faults.refuse_hook = self.refuse_for

    def bind(self) -> socket.socket:
        """The first listening socket, bound before the event loop starts."""
        return bind_socket(self.settings.host, self.settings.port, self.config.backlog)

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        """Start serving, then begin the start-up outage if one was asked for."""
        await super().startup(sockets=sockets)
        logger.info("provider listening on %s:%d", self.settings.host, self.settings.port)
        if self.settings.outage_mode is OutageMode.REFUSE and self.settings.outage_ms > 0:
            self.faults.start_outage(OutageMode.REFUSE, self.settings.outage_ms)
            await self.refuse_for(self.settings.outage_ms / 1000)

    async def on_tick(self, counter: int) -> bool:
        """uvicorn's 0.1 s tick: also stop once the process that started us is gone."""
        parent = self.settings.parent_pid
        if parent is not None and counter % 5 == 0 and os.getppid() != parent:
            logger.warning("parent process %d is gone; stopping", parent)
            return True
        return await super().on_tick(counter)

    async def refuse_for(self, seconds: float) -> int:
        """Stop accepting connections for `seconds`; return how many connections were closed."""
        if self.servers:
            for server in self.servers:
                server.close()
            self.servers = []
            self.faults.count("refused_windows")
        # Idle keep-alive connections close now; busy ones right after their answer is sent.
        connections = list(self.server_state.connections)
        for connection in connections:
            connection.shutdown()
        self.faults.count("refused_connections_closed", len(connections))
        if self._reopen_timer is not None:
            self._reopen_timer.cancel()
        loop = asyncio.get_running_loop()
        self._reopen_timer = loop.call_later(seconds, self._schedule_reopen)
        return len(connections)

    def _schedule_reopen(self) -> None:
        self._reopen_timer = None
        self._reopen_task = asyncio.ensure_future(self._reopen())

    async def _reopen(self) -> None:
        loop = asyncio.get_running_loop()
        for _ in range(_REBIND_TRIES):
            if self.should_exit:
                return
            try:
                sock = self.bind()
            except OSError as exc:
                # The port is in TIME_WAIT trouble or taken: try again shortly.
                logger.warning("re-binding %d failed: %s", self.settings.port, exc)
                await asyncio.sleep(_REBIND_PAUSE_S)
                continue
            server = await loop.create_server(
                self._protocol, sock=sock, backlog=self.config.backlog
            )
            self.servers.append(server)
            logger.info("outage over: listening on port %d again", self.settings.port)
            return
        logger.error("could not listen on port %d again; stopping", self.settings.port)
        self.should_exit = True

    def _protocol(self) -> asyncio.Protocol:
        # The same protocol uvicorn's own startup builds for each connection.
        protocol: asyncio.Protocol = self.config.http_protocol_class(  # type: ignore[call-arg]
            config=self.config,
            server_state=self.server_state,
            app_state=self.lifespan.state,
        )
        return protocol


def run(settings: ProviderSettings) -> None:
    """Serve the provider until SIGINT/SIGTERM; the port is bound before anything else runs."""
    store = ProviderStore(settings.db)
    try:
        faults = Faults(settings.faults, settings.seed)
        if settings.outage_mode is OutageMode.HTTP_503 and settings.outage_ms > 0:
            faults.start_outage(OutageMode.HTTP_503, settings.outage_ms)
        config = uvicorn.Config(
            create_app(settings, store, faults),
            lifespan="off",
            access_log=settings.access_log,
            timeout_graceful_shutdown=GRACEFUL_SHUTDOWN_S,
        )
        server = ProviderServer(config, faults, settings)
        server.run(sockets=[server.bind()])
    finally:
        store.close()
