"""A streaming tool served as server-sent events (`GET /events`, `GET /v1/events` with
`Accept: text/event-stream`).

The stream is opened through `Registry.open_stream`, so a refusal is an ordinary error
envelope before the first byte. A client that reconnects with `Last-Event-ID` resumes
after the last event it saw (the stream's `since` argument). The response ends with the
stream, when the client leaves, or when the server stops (`closing`).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

from starlette.responses import Response, StreamingResponse

from daemons.common.sse import SseMessage, sse_frames
from registry import Principal, Registry, ToolSpec
from registry.context import CallTier
from registry.errors import InvalidInput
from servers.wire import json_bytes

SSE_MEDIA_TYPE = "text/event-stream"
EVENTS_TOOL = "workflow.events"
"""The stream `GET /events` serves (the original system's path)."""


def wants_stream(spec: ToolSpec, accept: str | None) -> bool:
    return spec.stream is not None and SSE_MEDIA_TYPE in (accept or "")


def resume_from(spec: ToolSpec, last_event_id: str | None, args: dict[str, Any]) -> None:
    """`Last-Event-ID` is the stream's resume argument unless the query names one."""
    assert spec.stream is not None
    if last_event_id is None or spec.stream.resume_arg in args:
        return
    try:
        args[spec.stream.resume_arg] = int(last_event_id)
    except ValueError:
        raise InvalidInput(
            f"Last-Event-ID must be an event number, not {last_event_id!r}",
            details={"field": "Last-Event-ID"},
        ) from None


async def _messages(
    spec: ToolSpec, items: AsyncIterator[dict[str, Any]]
) -> AsyncIterator[SseMessage]:
    assert spec.stream is not None
    try:
        async for item in items:
            seq, kind = item.get(spec.stream.cursor_field), item.get(spec.stream.kind_field)
            yield SseMessage(
                None if seq is None else str(seq),
                None if kind is None else str(kind),
                json_bytes(item).decode(),
            )
    finally:
        close = getattr(items, "aclose", None)
        if close is not None:
            await close()


async def stream_response(
    registry: Registry,
    spec: ToolSpec,
    args: dict[str, Any],
    principal: Principal,
    trace_id: str,
    closing: asyncio.Event,
    tier: CallTier,
) -> Response:
    items = await registry.open_stream(
        spec.name, args, principal=principal, trace_id=trace_id, tier=tier
    )
    return StreamingResponse(
        sse_frames(_messages(spec, items), closing=closing),
        media_type=SSE_MEDIA_TYPE,
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no", "X-Trace-Id": trace_id},
    )
