"""The one run loop of a long-running process: serve until SIGINT/SIGTERM or until the
server stops by itself (the platform and every daemon run alone use it)."""

from __future__ import annotations

import asyncio
import contextlib
import signal
from collections.abc import Iterator

from daemons.common.asgi import AsgiServer

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


@contextlib.contextmanager
def stop_requested() -> Iterator[asyncio.Event]:
    """An event that SIGINT or SIGTERM sets during the block (so start-up can finish and
    shut down cleanly); the default handlers are back after it."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in STOP_SIGNALS:
        loop.add_signal_handler(sig, stop.set)
    try:
        yield stop
    finally:
        for sig in STOP_SIGNALS:
            loop.remove_signal_handler(sig)


class ServerStopped(Exception):
    """The server stopped without being asked to (its failure is the `__cause__`)."""


async def serve_until(stop: asyncio.Event, server: AsgiServer) -> None:
    """Return once `stop` is set; raise `ServerStopped` if the server stops first."""
    stopped = asyncio.create_task(stop.wait())
    closed = asyncio.create_task(server.wait_closed())
    try:
        await asyncio.wait({stopped, closed}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        stopped.cancel()
    if not stop.is_set():
        failure = None if closed.cancelled() else closed.exception()
        raise ServerStopped(f"the server at {server.url} stopped unexpectedly") from failure
    closed.cancel()
