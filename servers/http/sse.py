"""`GET /events`: workflow and task state changes as server-sent events.

Framed by `daemons.common.sse`; a client that reconnects with `Last-Event-ID` (or
`?since=`) resumes after the last event it saw. The stream ends when the platform stops.
"""

from __future__ import annotations

import asyncio

from starlette.requests import Request
from starlette.responses import Response, StreamingResponse

from daemons.common.sse import sse_frames
from registry import Principal, Registry
from registry.errors import InvalidInput
from tools.workflow.orchestrator import OrchestratorHandle


def _since(request: Request) -> int | None:
    raw = request.query_params.get("since") or request.headers.get("last-event-id")
    if raw is None:
        return None
    try:
        return int(raw)
    except ValueError:
        raise InvalidInput(f"since / Last-Event-ID must be an event number, not {raw!r}") from None


async def events_response(
    request: Request, registry: Registry, principal: Principal, closing: asyncio.Event
) -> Response:
    registry.authorize(principal, "workflow:read", "GET /events")
    since = _since(request)
    workflow_id = request.query_params.get("workflow_id")
    handle = await registry.resources.get(OrchestratorHandle)
    events = handle.api.events(since, workflow_id)
    return StreamingResponse(
        sse_frames(events, closing=closing),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )
