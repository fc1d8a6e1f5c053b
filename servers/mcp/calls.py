"""Who is calling, and a registry call made as them: what every MCP handler shares.

On stdio the server runs as the process's own principal; on HTTP each request carries
its bearer credential, so resources, completions and prompts read through the pipeline
exactly as a tool call does (`RegistryTool.run`), with the same refusals and audit.
"""

from __future__ import annotations

from typing import Any

from fastmcp.server.dependencies import get_context, get_http_request
from mcp.shared.exceptions import MCPError
from mcp_types import INTERNAL_ERROR, INVALID_PARAMS

from registry import Envelope, PlatformError, Principal, Registry
from registry.context import CallTier
from registry.trace import trace_id_from_headers
from servers.wire import bearer_token, request_tier

RESOURCE_NOT_FOUND = -32002
"""MCP's JSON-RPC code for a resource that does not exist."""
_RPC_CODES = {"not_found": RESOURCE_NOT_FOUND, "invalid_input": INVALID_PARAMS}


def http_caller() -> tuple[str | None, str | None, CallTier]:
    """The bearer credential, trace id and tier of the HTTP request carrying this call
    (no request: stdio)."""
    try:
        request = get_http_request()
    except RuntimeError:
        return None, None, CallTier.MCP_STDIO
    headers = request.headers
    tier = request_tier("/mcp", headers)
    return bearer_token(headers.get("authorization")), trace_id_from_headers(headers), tier


def request_meta() -> dict[str, Any]:
    """The `_meta` of the MCP request being handled (empty outside one)."""
    try:
        context = get_context()
    except RuntimeError:
        return {}
    request = context.request_context
    return dict(request.meta or {}) if request is not None else {}


def envelope_error(env: Envelope) -> MCPError:
    """A failed envelope as a JSON-RPC error whose data is `{error, trace_id}`, the same
    code and message as every tier (resources and prompts have no `isError` result)."""
    error = env.error or {}
    code = _RPC_CODES.get(str(error.get("code")), INTERNAL_ERROR)
    message = f"{error.get('code')}: {error.get('message')}"
    return MCPError(code, message, {"error": error, "trace_id": env.trace_id})


class Caller:
    """Registry calls as whoever sent the current MCP request."""

    def __init__(self, registry: Registry, principal: Principal | None) -> None:
        self.registry = registry
        self.principal = principal
        """Set on stdio (the process's principal); None on HTTP (each request's bearer)."""

    async def invoke(self, tool: str, args: dict[str, Any]) -> Envelope:
        """One pipeline call: identify → authorize → rate limit → handler → audit."""
        if self.principal is not None:
            credential, trace_id, tier = None, None, CallTier.MCP_STDIO
        else:
            credential, trace_id, tier = http_caller()
        meta = request_meta()
        if trace_id is None and isinstance(meta.get("traceparent"), str):
            trace_id = trace_id_from_headers({"traceparent": meta["traceparent"]})
        return await self.registry.invoke(
            tool,
            args,
            principal=self.principal,
            credential=credential,
            trace_id=trace_id,
            tier=tier,
        )

    async def read(self, tool: str, args: dict[str, Any]) -> Any:
        """The call's data, or its refusal raised as an `MCPError`."""
        env = await self.invoke(tool, args)
        if not env.ok:
            raise envelope_error(env)
        return env.data

    async def data_or_none(self, tool: str, args: dict[str, Any]) -> Any:
        """The call's data, or None when it failed (a listing or completion that shows
        only what the caller may read)."""
        env = await self.invoke(tool, args)
        return env.data if env.ok else None

    async def identity(self) -> Principal | None:
        """The caller's principal, or None when its credential is not valid."""
        if self.principal is not None:
            return self.principal
        credential, _, _ = http_caller()
        try:
            return await self.registry.authenticate(credential)
        except PlatformError:
            return None
