"""Server-sent events: the frames of a stream of messages, and the one parser of them.

The platform's `/events`, the orchestrator API's `/v1/events`, the orchestrator client and
the CLI share this module. Each message is `id: <seq>`, `event: <kind>`, `data: <JSON>`;
a comment every `keepalive_s` of silence keeps proxies from closing the stream and lets
the server notice a client that went away. The stream ends with its source, or when
`closing` is set.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass

KEEPALIVE_S = 15.0


@dataclass(frozen=True, slots=True)
class SseMessage:
    """One server-sent event: its id (the resume cursor), its event name and its data."""

    id: str | None
    event: str | None
    data: str

    def encode(self) -> bytes:
        head = "" if self.id is None else f"id: {self.id}\n"
        if self.event is not None:
            head += f"event: {self.event}\n"
        return f"{head}data: {self.data}\n\n".encode()


class SseParser:
    """Turns the lines of an SSE response into messages (comments and keep-alives skipped)."""

    def __init__(self) -> None:
        self._id: str | None = None
        self._event: str | None = None
        self._data: list[str] = []

    def feed(self, line: str) -> SseMessage | None:
        """One line, without its line ending; a message when the line ends one."""
        if not line:
            if not self._data:
                self._event = None
                return None
            message = SseMessage(self._id, self._event, "\n".join(self._data))
            self._event, self._data = None, []
            return message
        if line.startswith(":"):
            return None
        field, _, value = line.partition(":")
        value = value.removeprefix(" ")
        if field == "data":
            self._data.append(value)
        elif field == "id":
            self._id = value
        elif field == "event":
            self._event = value
        return None


async def _next(events: AsyncIterator[SseMessage]) -> SseMessage | None:
    try:
        return await anext(events)
    except StopAsyncIteration:
        return None


async def sse_frames(
    events: AsyncIterator[SseMessage],
    *,
    keepalive_s: float = KEEPALIVE_S,
    closing: asyncio.Event | None = None,
) -> AsyncIterator[bytes]:
    """The bytes of an SSE response for `events` (which it closes when done)."""
    closed = asyncio.create_task((closing or asyncio.Event()).wait())
    pending: asyncio.Task[SseMessage | None] | None = None
    try:
        yield b": connected\n\n"  # subscribed: clients wait for this before acting
        while True:
            pending = pending or asyncio.create_task(_next(events))
            done, _ = await asyncio.wait(
                {pending, closed}, timeout=keepalive_s, return_when=asyncio.FIRST_COMPLETED
            )
            if pending in done:
                event, pending = pending.result(), None
                if event is None:
                    return
                yield event.encode()
            elif closed in done:
                return
            else:
                yield b": keep-alive\n\n"
    finally:
        for task in (pending, closed):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        close = getattr(events, "aclose", None)
        if close is not None:
            await close()
