"""What FastMCP's proxy does not relay, for `prvng mcp` in front of a running platform:
`completion/complete`, and `resources/subscribe|unsubscribe` with the platform's
`notifications/resources/updated` passed back to the stdio client.

One upstream client session (the platform's `/mcp`, with the home's key) carries them;
the platform answers each through its pipeline as for any MCP client.
"""

from __future__ import annotations

import warnings
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from typing import Any

import mcp_types
from fastmcp import Client, FastMCP
from fastmcp.client.messages import MessageHandler
from mcp.server.context import ServerRequestContext
from mcp.shared.exceptions import MCPDeprecationWarning
from mcp_types import EmptyResult, SubscribeRequestParams, UnsubscribeRequestParams


class _Updates(MessageHandler):
    """Passes the platform's resource updates on to the stdio client's connection."""

    def __init__(self) -> None:
        self.connection: Any = None

    async def on_resource_updated(self, message: mcp_types.ResourceUpdatedNotification) -> None:
        if self.connection is not None:
            await self.connection.send_resource_updated(str(message.params.uri))


class Relay:
    """Completions and subscriptions of `proxy`, forwarded over `upstream`."""

    def __init__(self, upstream: Client[Any], updates: _Updates) -> None:
        self._upstream = upstream
        self._updates = updates

    def install(self, proxy: FastMCP) -> None:
        proxy.add_completion_handler(self.complete)
        lowlevel = proxy._mcp_server  # FastMCP's proxy serves no subscriptions
        lowlevel.add_request_handler("resources/subscribe", SubscribeRequestParams, self.subscribe)
        lowlevel.add_request_handler(
            "resources/unsubscribe", UnsubscribeRequestParams, self.unsubscribe
        )

    async def complete(
        self,
        ref: mcp_types.PromptReference | mcp_types.ResourceTemplateReference,
        argument: mcp_types.CompletionArgument,
        context: mcp_types.CompletionContext | None,
    ) -> mcp_types.Completion:
        known = dict(context.arguments or {}) if context is not None else None
        return await self._upstream.complete(
            ref, {"name": argument.name, "value": argument.value}, known
        )

    async def subscribe(
        self, ctx: ServerRequestContext[Any, Any], params: SubscribeRequestParams
    ) -> EmptyResult:
        self._updates.connection = ctx.session._connection  # the one stdio client
        with _handshake_era():
            await self._upstream.session.subscribe_resource(str(params.uri))
        return EmptyResult()

    async def unsubscribe(
        self, ctx: ServerRequestContext[Any, Any], params: UnsubscribeRequestParams
    ) -> EmptyResult:
        with _handshake_era():
            await self._upstream.session.unsubscribe_resource(str(params.uri))
        return EmptyResult()


@contextmanager
def _handshake_era() -> Iterator[None]:
    """`resources/(un)subscribe` is what handshake-era clients speak; the SDK flags it as
    gone from the 2026 revision, which this session does not speak."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", MCPDeprecationWarning)
        yield


@asynccontextmanager
async def relaying(proxy: FastMCP, transport: Any) -> AsyncIterator[Relay]:
    """Install a relay on `proxy` over a session of `transport` held open meanwhile."""
    updates = _Updates()
    # The handshake era: the one with `resources/subscribe` (the platform serves both).
    async with Client(transport, mode="legacy", message_handler=updates) as upstream:
        relay = Relay(upstream, updates)
        relay.install(proxy)
        yield relay
