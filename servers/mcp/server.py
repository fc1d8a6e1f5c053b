"""The MCP tier: every registry tool as an MCP tool (stdio and streamable HTTP at `/mcp`).

A tool's call goes straight to `Registry.invoke` (FastMCP does not validate arguments of
these tools; the pipeline does). Success is the envelope's `data` as structured content;
failure is an `isError` result carrying `{"error", "trace_id"}`, the same code and message
as every other tier.

The listing is written for an assistant that pays per token: the one-line summary as
description (the full text stays in `tools.list`), compact schemas (`registry.schema`),
only the tools the caller may call, and only the toolsets it asked for
(`registry.toolsets`: `prvng mcp --toolsets`, or `/mcp?toolsets=` on HTTP).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import mcp_types
from fastmcp import FastMCP
from fastmcp.exceptions import NotFoundError
from fastmcp.resources import Resource
from fastmcp.server.dependencies import get_context, get_http_request
from fastmcp.server.middleware import CallNext, Middleware, MiddlewareContext
from fastmcp.tools import Tool, ToolResult
from mcp_types import TextContent, ToolAnnotations
from mcp_types import Tool as MCPTool
from pydantic import PrivateAttr

from daemons.common.version import platform_version
from registry import Envelope, PlatformError, Principal, Registry, Risk, ToolSpec
from registry.context import CallTier, ProgressSink
from registry.registry import unknown_tool
from registry.schema import compact_input_schema, compact_output_schema
from registry.toolsets import parse_toolsets, toolset_of
from registry.trace import new_trace_id, trace_id_from_headers
from servers.http.mcp_gate import TOOLSETS_PARAM
from servers.mcp.calls import Caller
from servers.mcp.calls import http_caller as _caller
from servers.mcp.calls import request_meta as _request_meta
from servers.mcp.completions import completion_handler
from servers.mcp.prompts import add_prompts
from servers.mcp.resources import add_resources, listed_resources
from servers.mcp.subscriptions import Subscriptions
from servers.wire import json_bytes

SERVER_NAME = "provisioning-platform"
INSTRUCTIONS = (
    "Infrastructure provisioning platform. `tools.list` describes every tool; errors come "
    "back as isError results with {error: {code, message, details}, trace_id}."
)


def tool_result(env: Envelope) -> ToolResult:
    """An envelope as an MCP result: `data` on success, `{error, trace_id}` on failure.

    Built with `model_construct`: the envelope holds JSON data already (the pipeline
    dumped and checked it), and validating it again cost more than the rest of the tier."""
    body = env.data if env.ok else {"error": env.error, "trace_id": env.trace_id}
    text = TextContent.model_construct(type="text", text=json_bytes(body).decode())
    return ToolResult.model_construct(
        content=[text], structured_content=body, meta=None, is_error=not env.ok
    )


def _progress_sink(meta: dict[str, Any]) -> ProgressSink | None:
    """Forward handler progress when the client asked for it (sent a progress token)."""
    if meta.get("progressToken") is None:
        return None
    return get_context().report_progress


def _hints(spec: ToolSpec) -> ToolAnnotations:
    """The hints that differ from MCP's defaults (read-write, destructive, not idempotent,
    open world), and `destructiveHint` for every writer; a reader's other hints mean
    nothing."""
    if spec.risk is Risk.READ:
        return ToolAnnotations(read_only_hint=True, open_world_hint=False)
    return ToolAnnotations(
        destructive_hint=spec.risk is Risk.DESTRUCTIVE,
        idempotent_hint=True if spec.idempotent else None,
        open_world_hint=False,
    )


class RegistryTool(Tool):
    """One registry tool; `run` is a single `Registry.invoke`."""

    _registry: Registry = PrivateAttr()
    _principal: Principal | None = PrivateAttr(default=None)
    _tool: str = PrivateAttr()

    @classmethod
    def from_spec(
        cls, spec: ToolSpec, registry: Registry, principal: Principal | None
    ) -> RegistryTool:
        tool = cls(
            name=spec.name,
            description=spec.summary,
            parameters=compact_input_schema(spec.input_model),
            output_schema=compact_output_schema(spec.output_model),
            annotations=_hints(spec),
            tags={toolset_of(spec.name)},
            meta={"prvng": {"requires_approval": True}} if spec.requires_approval else None,
        )
        tool._registry = registry
        tool._principal = principal
        tool._tool = spec.name
        return tool

    def get_meta(self) -> dict[str, Any]:
        """Our `_meta` only: FastMCP's tags repeat the toolset the name already says."""
        return dict(self.meta or {})

    def to_mcp_tool(self, **overrides: Any) -> MCPTool:
        """The listed tool, without an empty `_meta` (bytes against the listing budget)."""
        tool = super().to_mcp_tool(**overrides)
        if not tool.meta:
            tool.meta = None
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
    on every tier (FastMCP would answer an unstructured protocol error).

    A call of one of `tools` (ours, the registry's) runs it directly: FastMCP's lookup
    through its providers and visibility transforms, which none of ours use, cost a
    tenth of a stateful `/mcp` call (docs/mcp.md, "What `/mcp` costs")."""

    def __init__(self) -> None:
        self.tools: dict[str, RegistryTool] = {}

    async def on_call_tool(
        self,
        context: MiddlewareContext[mcp_types.CallToolRequestParams],
        call_next: CallNext[mcp_types.CallToolRequestParams, ToolResult],
    ) -> ToolResult:
        tool = self.tools.get(context.message.name)
        if tool is not None:
            return await tool.run(context.message.arguments or {})
        try:
            return await call_next(context)
        except NotFoundError:
            name = context.message.name
            _, trace_id, _ = _caller()
            return tool_result(Envelope.failure(unknown_tool(name), trace_id or new_trace_id()))


def _requested_toolsets(registry: Registry) -> frozenset[str] | None:
    """The toolsets named by the HTTP request's `?toolsets=` (the HTTP tier has checked
    the names), or None."""
    try:
        text = get_http_request().query_params.get(TOOLSETS_PARAM)
    except RuntimeError:
        return None
    if text is None:
        return None
    try:
        return parse_toolsets(text, (spec.name for spec in registry.list()))
    except PlatformError:
        return frozenset()


class _VisibleTools(UnknownTools):
    """`tools/list` shows a caller only the tools it may call, from the toolsets it asked
    for; calling another still reaches the pipeline, so a refusal is the same `forbidden`
    as on every tier (and an unknown tool is `not_found`, as `UnknownTools` answers)."""

    def __init__(
        self, registry: Registry, principal: Principal | None, toolsets: frozenset[str] | None
    ) -> None:
        super().__init__()
        self._registry = registry
        self._principal = principal
        self._toolsets = toolsets

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
        toolsets = self._toolsets
        if toolsets is None:
            toolsets = _requested_toolsets(self._registry)
        allowed = {
            spec.name
            for spec in self._registry.visible(principal)
            if toolsets is None or toolset_of(spec.name) in toolsets
        }
        return [tool for tool in tools if tool.name in allowed]

    async def on_list_resources(
        self,
        context: MiddlewareContext[mcp_types.ListResourcesRequest],
        call_next: CallNext[mcp_types.ListResourcesRequest, Sequence[Resource]],
    ) -> Sequence[Resource]:
        """The concrete resources this caller may read, after the server's own."""
        resources = await call_next(context)
        return [*resources, *await listed_resources(Caller(self._registry, self._principal))]


def build_mcp(
    registry: Registry,
    *,
    principal: Principal | None = None,
    toolsets: frozenset[str] | None = None,
) -> FastMCP:
    """An MCP server over `registry`.

    With `principal` (stdio, in-process) every call runs as that principal; without one
    (HTTP) each call authenticates with the bearer credential of its HTTP request.
    `toolsets` (None: all) narrows the listing; on HTTP a request's `?toolsets=` does.
    """
    visible = _VisibleTools(registry, principal, toolsets)
    server: FastMCP = FastMCP(
        SERVER_NAME,
        instructions=INSTRUCTIONS,
        version=platform_version(),
        # One middleware: each one FastMCP runs costs every message a few awaits.
        middleware=[visible],
        # Our output schemas share their repeated parts through `$defs` on purpose
        # (registry.schema); input schemas have no `$ref` to resolve.
        dereference_schemas=False,
    )
    # They extend RegistryTool.
    from servers.mcp import answers, approvals

    asking: dict[str, type[RegistryTool]] = dict.fromkeys(approvals.ASKED, approvals.ApprovalTool)
    asking.update(dict.fromkeys(answers.ASKED, answers.AnswersTool))
    visible.tools = {
        spec.name: asking.get(spec.name, RegistryTool).from_spec(spec, registry, principal)
        for spec in registry.list()
    }
    for tool in visible.tools.values():
        server.add_tool(tool)
    caller = Caller(registry, principal)
    add_resources(server, caller)
    add_prompts(server, caller)
    server.add_completion_handler(completion_handler(caller))
    Subscriptions.serve(server, caller)
    return server
