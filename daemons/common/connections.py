"""Per-connection guards for uvicorn's h11 protocol: a connection cap and deadlines for
a request's head and body.

Uvicorn alone keeps a connection that sends a partial request line forever (its
keep-alive timer stops at the first byte), and its `limit_concurrency` answers 503 to
*every* connection once the count is reached, the open ones included. Here a deadline is
armed when a phase begins (waiting for a head, then for its body) and is not moved by
the bytes that trickle in; a connection past the cap is answered 503 `unavailable` (a
platform envelope) on its first request and closed, and the open ones go on.
"""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Any

import h11
import uvicorn
from starlette.types import Receive, Scope, Send
from uvicorn.protocols.http.h11_impl import H11Protocol

from daemons.common.settings import HttpLimits
from registry.envelope import Envelope
from registry.errors import Unavailable
from registry.trace import new_trace_id

log = logging.getLogger("prvng.asgi")

_HEAD, _BODY = "head", "body"
_TIMED_OUT = b"HTTP/1.1 408 Request Timeout\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"


class GuardedConfig(uvicorn.Config):
    """Uvicorn's config plus the limits the protocol enforces."""

    def __init__(self, app: Any, limits: HttpLimits, **kwargs: Any) -> None:
        super().__init__(
            app,
            http=GuardedH11Protocol,
            timeout_keep_alive=limits.idle_timeout_s,
            h11_max_incomplete_event_size=limits.max_header_bytes,
            **kwargs,
        )
        self.limits = limits


class GuardedH11Protocol(H11Protocol):
    """`H11Protocol` with a connection cap and head/body deadlines (see the module)."""

    def __init__(self, config: GuardedConfig, *args: Any, **kwargs: Any) -> None:
        super().__init__(config, *args, **kwargs)
        self._limits = config.limits
        self._phase: str | None = None
        self._deadline: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)  # type: ignore[arg-type]  # uvicorn narrows it
        if len(self.connections) > self._limits.max_connections:
            self.app = _refusal(self._limits.max_connections)
        self._track()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        self._track()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        self._track()

    def _track(self) -> None:
        """Arm a deadline when a phase begins; bytes within the phase do not move it."""
        state = self.conn.their_state
        phase = _HEAD if state is h11.IDLE else _BODY if state is h11.SEND_BODY else None
        if phase == self._phase or self.transport.is_closing():
            return
        self._disarm()
        self._phase = phase
        if phase is not None:
            limits = self._limits
            delay = limits.header_timeout_s if phase == _HEAD else limits.body_timeout_s
            self._deadline = self.loop.call_later(delay, self._expired, phase)

    def _disarm(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None

    def _expired(self, phase: str) -> None:
        self._deadline = None
        if self.transport.is_closing():
            return
        partial = bool(self.conn.trailing_data[0])
        log.info("closing %s: request %s not received in time", _peer(self.client), phase)
        if phase == _HEAD and partial:  # an idle keep-alive connection is just closed
            self.transport.write(_TIMED_OUT)
        if self.cycle is not None and not self.cycle.response_complete:
            self.cycle.disconnected = True
            self.cycle.message_event.set()
        self.transport.close()


def _refusal(cap: int) -> Any:
    """An ASGI app answering every request 503 `unavailable` and closing the connection."""

    async def refuse(scope: Scope, receive: Receive, send: Send) -> None:
        err = Unavailable(
            f"the server has its {cap} connections open; retry shortly, or raise "
            "PRVNG_HTTP_MAX_CONNECTIONS",
            details={"max_connections": cap},
        )
        envelope = Envelope.failure(err, new_trace_id())
        body = json.dumps(envelope.to_dict()).encode()
        headers = [
            (b"content-type", b"application/json"),
            (b"content-length", str(len(body)).encode()),
            (b"connection", b"close"),
            (b"retry-after", b"1"),
        ]
        await send({"type": "http.response.start", "status": 503, "headers": headers})
        await send({"type": "http.response.body", "body": body})

    return refuse


def _peer(client: tuple[str, int] | None) -> str:
    return "a client" if client is None else f"{client[0]}:{client[1]}"
