"""`GET /events`: workflow and task state changes as server-sent events.

Each event is `id: <seq>`, `event: <kind>`, `data: <Event JSON>`; a client that reconnects
with `Last-Event-ID` (or `?since=`) resumes after it. A comment line every 15 s keeps
proxies from closing an idle stream; the stream ends when the platform stops.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

from starlette.requests import Request
from starlette.responses import Response, StreamingResponse

from daemons.orchestrator.views import Event
from registry import Principal, Registry
from registry.errors import InvalidInput
from tools.workflow.orchestrator import OrchestratorHandle

KEEPALIVE_S = 15.0
_END = object()


def _since(request: Request) -> int | None:
    raw = request.query_params.get("since") or request.headers.get("last-event-id")
    if raw is None:
        return None
    try:
        return int(raw)
    except ValueError:
        raise InvalidInput(f"since / Last-Event-ID must be an event number, not {raw!r}") from None


async def _frames(events: AsyncIterator[Event], closing: asyncio.Event) -> AsyncIterator[bytes]:
    queue: asyncio.Queue[object] = asyncio.Queue(maxsize=1000)

    async def pump() -> None:
        try:
            async for event in events:
                await queue.put(event)
        finally:
            await queue.put(_END)

    pumping = asyncio.create_task(pump())
    closed = asyncio.create_task(closing.wait())
    try:
        yield b": stream open\n\n"
        while True:
            getting = asyncio.create_task(queue.get())
            done, _ = await asyncio.wait(
                {getting, closed}, timeout=KEEPALIVE_S, return_when=asyncio.FIRST_COMPLETED
            )
            if getting not in done:
                getting.cancel()
                if closed in done:
                    return
                yield b": keepalive\n\n"
                continue
            item = getting.result()
            if item is _END:
                return
            assert isinstance(item, Event)
            data = item.model_dump_json()
            yield f"id: {item.seq}\nevent: {item.kind}\ndata: {data}\n\n".encode()
    finally:
        for task in (pumping, closed):
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task


async def events_response(
    request: Request, registry: Registry, principal: Principal, closing: asyncio.Event
) -> Response:
    registry.authorize(principal, "workflow:read", "GET /events")
    since = _since(request)
    workflow_id = request.query_params.get("workflow_id")
    handle = await registry.resources.get(OrchestratorHandle)
    events = handle.api.events(since, workflow_id)
    return StreamingResponse(
        _frames(events, closing),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )
