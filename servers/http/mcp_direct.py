"""`tools/call` on a stateless, JSON-response `/mcp`, answered in the request's own task.

In that mode a call is one POST in and one JSON object out, with no session to consult
and no stream to write notifications to, so it needs none of the SDK's per-request
transport, dispatcher and server task (which cost more than the call itself: docs/mcp.md).
`DirectCalls` answers it with one `Registry.invoke`, as the MCP tier's `RegistryTool.run`
does, and writes the result FastMCP would write (`tests/test_mcp_stateless.py` compares).
It takes only a request it can answer exactly so; everything else (initialize, listings,
batches, unknown tools, a protocol version the SDK routes elsewhere, headers the SDK
refuses) goes on to the SDK.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, TypeGuard

from mcp_types.version import HANDSHAKE_PROTOCOL_VERSIONS
from starlette.datastructures import Headers
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from registry import Envelope, Principal, Registry
from registry.trace import trace_id_from_headers
from servers.http.mcp_gate import PRINCIPAL_SCOPE_KEY
from servers.wire import json_bytes, request_tier

_JSON = "application/json"
_ACCEPTS_JSON = frozenset({_JSON, "application/*", "*/*"})
_VERSIONS = frozenset({*HANDSHAKE_PROTOCOL_VERSIONS, None})
"""The revisions the SDK serves through its transport (None: the header left out)."""


def call_result(env: Envelope) -> dict[str, Any]:
    """A `CallToolResult` on the wire: the same content as the MCP tier's `tool_result`."""
    body = env.data if env.ok else {"error": env.error, "trace_id": env.trace_id}
    return {
        "content": [{"type": "text", "text": json_bytes(body).decode()}],
        "structuredContent": body,
        "isError": not env.ok,
    }


def _accepts_json(headers: Headers) -> bool:
    accepted = (part.split(";")[0].strip().lower() for part in headers.get("accept", "").split(","))
    return any(media in _ACCEPTS_JSON for media in accepted)


def _is_json(headers: Headers) -> bool:
    content_type = headers.get("content-type", "").split(";")[0]
    return any(part.strip() == _JSON for part in content_type.split(","))


class DirectCalls:
    """The tools/call fast path of a stateless JSON `/mcp` serving `tools`."""

    def __init__(self, registry: Registry, tools: Iterable[str]) -> None:
        self.registry = registry
        self._tools = frozenset(tools)

    def takes(self, message: Any, headers: Headers) -> TypeGuard[dict[str, Any]]:
        """Whether `message` is a single, well-formed call of a served tool that the SDK
        would accept with these headers."""
        if not isinstance(message, dict) or message.get("method") != "tools/call":
            return False
        params = message.get("params")
        request_id = message.get("id")
        return (
            message.get("jsonrpc") == "2.0"
            and isinstance(request_id, str | int)
            and not isinstance(request_id, bool)
            and isinstance(params, dict)
            and isinstance(params.get("name"), str)
            and params["name"] in self._tools
            and isinstance(params.get("arguments", {}), dict)
            and isinstance(params.get("_meta", {}), dict)
            and headers.get("mcp-protocol-version") in _VERSIONS
            and _accepts_json(headers)
            and _is_json(headers)
        )

    async def answer(
        self, message: dict[str, Any], scope: Scope, receive: Receive, send: Send
    ) -> None:
        """Invoke the tool as the request's principal and send the JSON-RPC response."""
        headers = Headers(scope=scope)
        params = message["params"]
        principal: Principal = scope[PRINCIPAL_SCOPE_KEY]
        env = await self.registry.invoke(
            params["name"],
            params.get("arguments") or {},
            principal=principal,
            trace_id=trace_id_from_headers(headers),
            tier=request_tier("/mcp", headers),
        )
        reply = {"jsonrpc": "2.0", "id": message["id"], "result": call_result(env)}
        response = Response(json_bytes(reply), media_type=_JSON)
        await response(scope, receive, send)
