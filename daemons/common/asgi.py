"""Uvicorn on a socket we bind ourselves, as a task in the caller's event loop.

Binding first makes port 0 work (the real port is known before serving) and turns
"address in use" into a clear `Unavailable`. Readiness is an event, not a poll, and
signals are left to the platform so one handler stops every component in order.
Every connection is held to `HttpLimits` (`connections`: a cap, head and body deadlines).
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import logging
import socket
from collections.abc import Iterator

import uvicorn
from starlette.types import ASGIApp

from daemons.common.connections import GuardedConfig
from daemons.common.settings import HttpLimits
from registry.errors import Unavailable

log = logging.getLogger("prvng.asgi")


def bind_socket(host: str, port: int) -> socket.socket:
    """A listening TCP socket on host:port (port 0 picks a free one).

    The protocol is named (`IPPROTO_TCP`, not 0) because asyncio only sets TCP_NODELAY
    on accepted sockets that say they are TCP; without it every response waits ~40 ms
    for Nagle and delayed ACKs.
    """
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        sock.listen(2048)
    except OSError as exc:
        sock.close()
        if exc.errno == errno.EADDRINUSE:
            raise Unavailable(
                f"port {port} on {host} is already in use; stop whatever holds it "
                "(`prvng platform status`) or pick another with --port",
                details={"host": host, "port": port},
            ) from None
        raise Unavailable(
            f"cannot listen on {host}:{port}: {exc.strerror or exc}",
            details={"host": host, "port": port},
        ) from None
    return sock


def url_for(sock: socket.socket) -> str:
    """The base URL clients use to reach `sock` (a wildcard address becomes loopback)."""
    host, port = sock.getsockname()[:2]
    if host in ("0.0.0.0", ""):
        host = "127.0.0.1"
    elif host == "::":
        host = "::1"
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


class _Server(uvicorn.Server):
    """Uvicorn that sets `ready` once listening and never installs signal handlers."""

    def __init__(self, config: uvicorn.Config) -> None:
        super().__init__(config)
        self.ready = asyncio.Event()

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        try:
            await super().startup(sockets=sockets)
        except SystemExit:  # uvicorn exits the process when the app's lifespan fails
            self.should_exit = True
            return
        self.ready.set()


class AsgiServer:
    """Serves one ASGI app until `stop()`; `start()` returns once it accepts connections."""

    def __init__(
        self,
        app: ASGIApp,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        limits: HttpLimits | None = None,
    ) -> None:
        self.app = app
        self.limits = limits or HttpLimits()
        self.host = host
        self.port = port
        self.url = ""
        self._server: _Server | None = None
        self._task: asyncio.Task[None] | None = None

    @property
    def running(self) -> bool:
        return self._task is not None and not self._task.done()

    async def start(self) -> None:
        sock = bind_socket(self.host, self.port)
        self.url = url_for(sock)
        config = GuardedConfig(
            self.app,
            self.limits,
            lifespan="on",
            log_config=None,
            access_log=False,
            ws="none",
            timeout_graceful_shutdown=5,
        )
        server = self._server = _Server(config)
        self._task = asyncio.create_task(server.serve(sockets=[sock]), name=f"http {self.url}")
        ready = asyncio.create_task(server.ready.wait())
        await asyncio.wait({self._task, ready}, return_when=asyncio.FIRST_COMPLETED)
        if not server.ready.is_set():
            ready.cancel()
            sock.close()
            failure = None if self._task.cancelled() else self._task.exception()
            raise Unavailable(
                f"the HTTP server on {self.url} did not start: {failure or 'app startup failed'}"
                "; the log above says why"
            )

    async def wait_closed(self) -> None:
        """Returns when the server stops (after `stop()` or a crash)."""
        if self._task is not None:
            await asyncio.shield(self._task)

    async def stop(self) -> None:
        if self._server is None or self._task is None:
            return
        self._server.should_exit = True
        try:
            await self._task
        except Exception:
            log.exception("the HTTP server on %s failed while stopping", self.url)
        self._server = self._task = None
