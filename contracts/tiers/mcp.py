"""Tiers C and E: a real MCP client, in process (C) or to `prvng mcp` over stdio (E).

Success must carry the data as structured content; an error must be `isError` with
structured content `{"error": {code, message, details}, "trace_id"}`.
"""

from __future__ import annotations

from contextlib import AsyncExitStack
from typing import Any

import mcp_types
from fastmcp import Client
from fastmcp.client.transports import StdioTransport

from contracts.tiers.base import Listing, Outcome, Tier, error_problems, prvng_executable
from daemons.common.files import private_dir


def outcome_from_result(result: mcp_types.CallToolResult) -> Outcome:
    """Read an MCP tool result back into an outcome, noting what breaks the contract."""
    content = result.structured_content
    if not result.is_error:
        if content is None:
            return Outcome.no_answer("success without structured content")
        return Outcome(ok=True, data=content)
    if not isinstance(content, dict) or "error" not in content:
        text = " ".join(c.text for c in result.content if isinstance(c, mcp_types.TextContent))
        return Outcome.no_answer(f"isError without a structured error: {text[:300]!r}")
    problems = error_problems(content["error"])
    if not isinstance(content.get("trace_id"), str) or not content["trace_id"]:
        problems.append("structured error has no trace_id")
    error = content["error"] if isinstance(content["error"], dict) else None
    return Outcome(ok=False, error=error, problems=problems)


def _describe(tool: mcp_types.Tool) -> dict[str, Any]:
    hints = tool.annotations
    return {
        "name": tool.name,
        "input_schema": tool.input_schema,
        "output_schema": tool.output_schema,
        "read_only": None if hints is None else hints.read_only_hint,
        "destructive": None if hints is None else hints.destructive_hint,
        "idempotent": None if hints is None else hints.idempotent_hint,
    }


class _McpTier(Tier):
    _client: Client[Any]

    async def call(self, tool: str, args: dict[str, Any]) -> Outcome:
        result = await self._client.call_tool_mcp(tool, args, timeout=self.env.call_timeout)
        return outcome_from_result(result)

    async def listing(self) -> Listing:
        tools = await self._client.list_tools()
        return Listing("MCP tools/list", mcp_tools=[_describe(tool) for tool in tools])


class InProcessMcpTier(_McpTier):
    key = "C"
    name = "mcp"

    async def _start(self, stack: AsyncExitStack) -> None:
        from servers.mcp import build_mcp

        owner = self.env.caller()
        registry = await self.env.open_registry(stack)
        client: Client[Any] = Client(build_mcp(registry, principal=owner))
        self._client = await stack.enter_async_context(client)


class StdioMcpTier(_McpTier):
    """`prvng mcp` in its own fresh home; it builds its registry itself, from its env."""

    key = "E"
    name = "mcp-stdio"

    async def _start(self, stack: AsyncExitStack) -> None:
        log = self.env.settings.home / "mcp-stdio.log"
        private_dir(log.parent)
        transport = StdioTransport(
            command=prvng_executable(),
            args=["mcp"],
            env=self.env.subprocess_env(),
            cwd=str(self.env.settings.home),
            keep_alive=False,
            log_file=log,
        )
        client: Client[Any] = Client(transport, timeout=self.env.call_timeout)
        try:
            self._client = await stack.enter_async_context(client)
        except Exception as exc:
            tail = log.read_text(errors="replace")[-800:] if log.exists() else ""
            raise RuntimeError(f"`prvng mcp` did not start: {exc}; its stderr: {tail}") from exc
