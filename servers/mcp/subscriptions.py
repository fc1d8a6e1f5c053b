"""`resources/subscribe` for `prvng://workflows/{id}`: `notifications/resources/updated`
each time the workflow or one of its tasks changes state.

Subscribing reads the workflow once (`workflow.get`, so a caller who may not read it is
refused with the pipeline's `forbidden`/`not_found`) and opens `workflow.events` for it
through `Registry.open_stream`, the stream the SSE tier serves: authorized, rate-limited
and audited like any call. One task per (connection, URI) forwards its events; it ends
when the workflow finishes, on `resources/unsubscribe`, or when the connection closes
(the connection's exit stack cancels what is left), so nothing outlives its session.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import weakref
from collections.abc import AsyncIterator
from typing import Any

from fastmcp import FastMCP
from fastmcp.server.dependencies import bind_request_context
from mcp.server.context import ServerRequestContext
from mcp.shared.exceptions import MCPError
from mcp_types import INVALID_PARAMS, EmptyResult, SubscribeRequestParams, UnsubscribeRequestParams

from registry import Envelope, PlatformError
from registry.context import CallTier
from registry.trace import new_trace_id
from servers.mcp.calls import Caller, envelope_error, http_caller
from servers.mcp.resources import SCHEME

WORKFLOW_URI = re.compile(rf"^{SCHEME}://workflows/(?P<id>[a-z0-9][a-z0-9_-]{{0,63}})$")
EVENTS_TOOL = "workflow.events"
_STATE_KEY = "prvng.subscriptions"
_SERVED: weakref.WeakKeyDictionary[FastMCP, Subscriptions] = weakref.WeakKeyDictionary()


def subscriptions_of(server: FastMCP) -> Subscriptions:
    """The subscriptions `build_mcp` serves on `server`."""
    return _SERVED[server]


class Subscriptions:
    """The open subscriptions of one MCP server, per connection."""

    def __init__(self, caller: Caller) -> None:
        self._caller = caller
        self._tasks: set[asyncio.Task[None]] = set()

    @property
    def active(self) -> int:
        """How many subscriptions still forward events (every connection)."""
        return len(self._tasks)

    @classmethod
    def serve(cls, server: FastMCP, caller: Caller) -> Subscriptions:
        """Serve `resources/subscribe|unsubscribe` on `server` (which declares the
        capability); `subscriptions_of(server)` finds them again."""
        subscriptions = cls(caller)
        lowlevel = server._mcp_server  # FastMCP serves no subscriptions of its own
        lowlevel.add_request_handler(
            "resources/subscribe", SubscribeRequestParams, subscriptions.subscribe
        )
        lowlevel.add_request_handler(
            "resources/unsubscribe", UnsubscribeRequestParams, subscriptions.unsubscribe
        )
        _SERVED[server] = subscriptions
        return subscriptions

    async def subscribe(
        self, ctx: ServerRequestContext[Any, Any], params: SubscribeRequestParams
    ) -> EmptyResult:
        uri = str(params.uri)
        match = WORKFLOW_URI.match(uri)
        if match is None:
            raise MCPError(
                INVALID_PARAMS,
                f"only {SCHEME}://workflows/{{id}} can be subscribed to, not {uri!r}",
            )
        connection = ctx.session._connection  # the SDK keeps per-connection state there
        mine: dict[str, asyncio.Task[None]] = connection.state.setdefault(_STATE_KEY, {})
        if uri in mine:
            return EmptyResult()
        with bind_request_context(ctx):
            await self._caller.read("workflow.get", {"id": match["id"]})
            items = await self._open(match["id"])
        if not mine:
            connection.exit_stack.push_async_callback(self._close_all, mine)
        task = asyncio.create_task(self._forward(items, connection, uri, mine))
        mine[uri] = task
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return EmptyResult()

    async def unsubscribe(
        self, ctx: ServerRequestContext[Any, Any], params: UnsubscribeRequestParams
    ) -> EmptyResult:
        mine = ctx.session._connection.state.get(_STATE_KEY, {})
        task = mine.pop(str(params.uri), None)
        if task is not None:
            await _cancel(task)
        return EmptyResult()

    async def _open(self, workflow_id: str) -> AsyncIterator[dict[str, Any]]:
        caller = self._caller
        if caller.principal is not None:
            credential, trace_id, tier = None, None, CallTier.MCP_STDIO
        else:
            credential, trace_id, tier = http_caller()
        try:
            return await caller.registry.open_stream(
                EVENTS_TOOL,
                {"workflow_id": workflow_id, "until_finished": True},
                principal=caller.principal,
                credential=credential,
                trace_id=trace_id,
                tier=tier,
            )
        except PlatformError as exc:
            raise envelope_error(Envelope.failure(exc, trace_id or new_trace_id())) from None

    async def _forward(
        self,
        items: AsyncIterator[dict[str, Any]],
        connection: Any,
        uri: str,
        mine: dict[str, asyncio.Task[None]],
    ) -> None:
        try:
            async for _event in items:
                await connection.send_resource_updated(uri)
        finally:
            close = getattr(items, "aclose", None)
            if close is not None:
                await close()
            if mine.get(uri) is asyncio.current_task():
                del mine[uri]

    async def _close_all(self, mine: dict[str, asyncio.Task[None]]) -> None:
        for task in list(mine.values()):
            await _cancel(task)
        mine.clear()


__all__ = ["Subscriptions", "subscriptions_of"]


async def _cancel(task: asyncio.Task[None]) -> None:
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
