"""Server-sent events from any async stream of events (the platform's `/events` and the
orchestrator API's `/v1/events` share it).

Each event is `id: <seq>`, `event: <kind>`, `data: <JSON>`; a comment every
`keepalive_s` of silence keeps proxies from closing the stream and lets the server notice
a client that went away. The stream ends with its source, or when `closing` is set.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Protocol

KEEPALIVE_S = 15.0


class SseEvent(Protocol):
    @property
    def seq(self) -> int: ...

    @property
    def kind(self) -> str: ...

    def model_dump_json(self) -> str: ...


async def _next(events: AsyncIterator[SseEvent]) -> SseEvent | None:
    try:
        return await anext(events)
    except StopAsyncIteration:
        return None


async def sse_frames(
    events: AsyncIterator[SseEvent],
    *,
    keepalive_s: float = KEEPALIVE_S,
    closing: asyncio.Event | None = None,
) -> AsyncIterator[bytes]:
    """The bytes of an SSE response for `events` (which it closes when done)."""
    closed = asyncio.create_task((closing or asyncio.Event()).wait())
    pending: asyncio.Task[SseEvent | None] | None = None
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
                data = event.model_dump_json()
                yield f"id: {event.seq}\nevent: {event.kind}\ndata: {data}\n\n".encode()
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
