"""The MCP tier: every registry tool as an MCP tool (stdio and streamable HTTP at `/mcp`).

A tool's call goes straight to `Registry.invoke` (FastMCP does not validate arguments of
these tools; the pipeline does). Success is the envelope's `data` as structured content;
failure is an `isError` result carrying `{"error", "trace_id"}`, the same code and message
as every other tier.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import mcp_types
from fastmcp import FastMCP
from fastmcp.exceptions import NotFoundError
from fastmcp.server.dependencies import get_context, get_http_request
from fastmcp.server.middleware import CallNext, Middleware, MiddlewareContext
from fastmcp.tools import Tool, ToolResult
from mcp_types import TextContent, ToolAnnotations
from pydantic import PrivateAttr

from daemons.common.version import platform_version
from registry import Envelope, PlatformError, Principal, Registry, Risk, ToolSpec
from registry.context import CallTier, ProgressSink
from registry.registry import unknown_tool
from registry.schema import input_schema, output_schema
from registry.trace import new_trace_id, trace_id_from_headers
from servers.wire import bearer_token, json_bytes, request_tier

SERVER_NAME = "provisioning-platform"
INSTRUCTIONS = (
    "Infrastructure provisioning platform. `tools.list` describes every tool; errors come "
    "back as isError results with {error: {code, message, details}, trace_id}."
)


def tool_result(env: Envelope) -> ToolResult:
    """An envelope as an MCP result: `data` on success, `{error, trace_id}` on failure."""
    if env.ok:
        text = json_bytes(env.data).decode()
        return ToolResult(
            content=[TextContent(type="text", text=text)], structured_content=env.data
        )
    body = {"error": env.error, "trace_id": env.trace_id}
    return ToolResult(
        content=[TextContent(type="text", text=json_bytes(body).decode())],
        structured_content=body,
        is_error=True,
    )


def _caller() -> tuple[str | None, str | None, CallTier]:
    """The bearer credential, trace id and tier of the HTTP request carrying this call
    (no request: stdio)."""
    try:
        request = get_http_request()
    except RuntimeError:
        return None, None, CallTier.MCP_STDIO
    headers = request.headers
    tier = request_tier("/mcp", headers)
    return bearer_token(headers.get("authorization")), trace_id_from_headers(headers), tier


def _request_meta() -> dict[str, Any]:
    try:
        context = get_context()
    except RuntimeError:
        return {}
    request = context.request_context
    return dict(request.meta or {}) if request is not None else {}


def _progress_sink(meta: dict[str, Any]) -> ProgressSink | None:
    """Forward handler progress when the client asked for it (sent a progress token)."""
    if meta.get("progressToken") is None:
        return None
    return get_context().report_progress


class RegistryTool(Tool):
    """One registry tool; `run` is a single `Registry.invoke`."""

    _registry: Registry = PrivateAttr()
    _principal: Principal | None = PrivateAttr(default=None)
    _tool: str = PrivateAttr()

    @classmethod
    def from_spec(
        cls, spec: ToolSpec, registry: Registry, principal: Principal | None
    ) -> RegistryTool:
        description = spec.summary
        if spec.description and spec.description != spec.summary:
            description = f"{spec.summary}\n\n{spec.description}"
        tool = cls(
            name=spec.name,
            title=spec.summary,
            description=description,
            parameters=input_schema(spec.input_model),
            output_schema=output_schema(spec.output_model),
            annotations=ToolAnnotations(
                title=spec.summary,
                read_only_hint=spec.risk is Risk.READ,
                destructive_hint=spec.risk is Risk.DESTRUCTIVE,
                idempotent_hint=spec.idempotent,
                open_world_hint=False,
            ),
            tags={spec.group, *spec.tags},
            meta={
                "prvng": {
                    "permission": spec.permission,
                    "risk": spec.risk.value,
                    "requires_approval": spec.requires_approval,
                }
            },
        )
        tool._registry = registry
        tool._principal = principal
        tool._tool = spec.name
        return tool

    async def run(self, arguments: dict[str, Any]) -> ToolResult:
        if self._principal is not None:  # stdio: the process's own principal, no HTTP
            credential, trace_id, tier = None, None, CallTier.MCP_STDIO
        else:
            credential, trace_id, tier = _caller()
        meta = _request_meta()
        if trace_id is None and isinstance(meta.get("traceparent"), str):
            trace_id = trace_id_from_headers({"traceparent": meta["traceparent"]})
        env = await self._registry.invoke(
            self._tool,
            arguments,
            principal=self._principal,
            credential=credential,
            trace_id=trace_id,
            progress=_progress_sink(meta),
            tier=tier,
        )
        return tool_result(env)


class UnknownTools(Middleware):
    """A call of a tool this server does not have is a structured `not_found` result, as
    on every tier (FastMCP would answer an unstructured protocol error)."""

    async def on_call_tool(
        self,
        context: MiddlewareContext[mcp_types.CallToolRequestParams],
        call_next: CallNext[mcp_types.CallToolRequestParams, ToolResult],
    ) -> ToolResult:
        try:
            return await call_next(context)
        except NotFoundError:
            name = context.message.name
            _, trace_id, _ = _caller()
            return tool_result(Envelope.failure(unknown_tool(name), trace_id or new_trace_id()))


def build_mcp(registry: Registry, *, principal: Principal | None = None) -> FastMCP:
    """An MCP server over `registry`.

    With `principal` (stdio, in-process) every call runs as that principal; without one
    (HTTP) each call authenticates with the bearer credential of its HTTP request.
    """
    server: FastMCP = FastMCP(
        SERVER_NAME,
        instructions=INSTRUCTIONS,
        version=platform_version(),
        middleware=[UnknownTools()],
    )
    for spec in registry.list():
        server.add_tool(RegistryTool.from_spec(spec, registry, principal))
    server.add_middleware(_VisibleTools(registry, principal))
    return server


class _VisibleTools(Middleware):
    """`tools/list` shows a caller only the tools it may call; calling another still
    reaches the pipeline, so the refusal is the same `forbidden` as on every tier."""

    def __init__(self, registry: Registry, principal: Principal | None) -> None:
        self._registry = registry
        self._principal = principal

    async def on_list_tools(
        self,
        context: MiddlewareContext[mcp_types.ListToolsRequest],
        call_next: CallNext[mcp_types.ListToolsRequest, Sequence[Tool]],
    ) -> Sequence[Tool]:
        tools = await call_next(context)
        principal = self._principal
        if principal is None:
            credential, _, _ = _caller()
            try:
                principal = await self._registry.authenticate(credential)
            except PlatformError:
                return []
        allowed = {spec.name for spec in self._registry.visible(principal)}
        return [tool for tool in tools if tool.name in allowed]
