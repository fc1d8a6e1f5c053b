"""The MCP tier: tool shapes, results equal to the envelope, HTTP at /mcp, stdio."""

from __future__ import annotations

import json
import os
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastmcp import Client
from fastmcp.client.transports import StreamableHttpTransport
from mcp.shared.exceptions import MCPError
from pydantic import Field

from daemons.common.keystore import KeyStore
from daemons.common.settings import Settings
from registry import (
    JsonlAuditSink,
    Principal,
    Registry,
    Risk,
    StrictModel,
    ToolContext,
    ToolSpec,
)
from registry.schema import compact_input_schema, compact_output_schema
from servers.mcp import build_mcp
from servers.supervisor import serve
from tests.subprocesses import mcp_stdio


def _payload(result: Any) -> dict[str, Any]:
    """The structured content, after checking the text content says the same."""
    (text,) = result.content
    assert json.loads(text.text) == result.structured_content
    return dict(result.structured_content)


async def test_every_tool_is_listed_with_schemas_and_hints(
    registry: Registry, owner: Principal
) -> None:
    async with Client(build_mcp(registry, principal=owner)) as client:
        listed = {tool.name: tool for tool in await client.list_tools()}
    assert set(listed) == {spec.name for spec in registry.list()}
    for spec in registry.list():
        tool = listed[spec.name]
        assert tool.input_schema == compact_input_schema(spec.input_model)
        assert tool.output_schema == compact_output_schema(spec.output_model)
        assert tool.description == spec.summary and tool.title
        hints = tool.annotations
        assert hints is not None
        # Unset hints mean MCP's defaults: read-write, destructive, not idempotent.
        assert bool(hints.read_only_hint) is (spec.risk is Risk.READ)
        if spec.risk is not Risk.READ:
            assert hints.destructive_hint is (spec.risk is Risk.DESTRUCTIVE)
            assert bool(hints.idempotent_hint) is spec.idempotent
        assert hints.open_world_hint is False
    assert listed["server.remove"].annotations.destructive_hint is True
    assert listed["server.register"].annotations.destructive_hint is False


async def test_results_carry_the_envelope_of_every_other_tier(
    registry: Registry, owner: Principal
) -> None:
    async with Client(build_mcp(registry, principal=owner)) as client:
        created = await client.call_tool("server.register", {"name": "m-1"})
        assert not created.is_error and _payload(created)["name"] == "m-1"
        again = await client.call_tool("server.register", {"name": "m-1"}, raise_on_error=False)
        missing = await client.call_tool("server.get", {"name": "m-2"}, raise_on_error=False)
        invalid = await client.call_tool("server.list", {"limit": 0}, raise_on_error=False)
    direct = await registry.invoke("server.get", {"name": "m-2"}, principal=owner)
    assert missing.is_error
    body = _payload(missing)
    assert set(body) == {"error", "trace_id"} and len(body["trace_id"]) == 32
    assert body["error"] == direct.error
    assert _payload(again)["error"]["code"] == "conflict"
    assert _payload(invalid)["error"]["code"] == "invalid_input"
    assert "limit" in _payload(invalid)["error"]["message"]


async def test_without_a_principal_or_request_calls_are_refused(registry: Registry) -> None:
    async with Client(build_mcp(registry)) as client:
        result = await client.call_tool("platform.info", {}, raise_on_error=False)
    assert result.is_error and _payload(result)["error"]["code"] == "unauthenticated"


class StepsIn(StrictModel):
    steps: int = Field(ge=1, le=5)


class StepsOut(StrictModel):
    done: int


async def steps(args: StepsIn, ctx: ToolContext) -> StepsOut:
    for step in range(1, args.steps + 1):
        await ctx.progress(step, args.steps, f"step {step}")
    return StepsOut(done=args.steps)


def _steps_spec(name: str, **kw: Any) -> ToolSpec:
    return ToolSpec(
        name=name,
        summary="Count steps, reporting progress",
        input_model=StepsIn,
        output_model=StepsOut,
        handler=steps,
        permission="demo:write",
        risk=Risk.WRITE,
        **kw,
    )


@pytest.fixture
def demo(keystore: KeyStore, tmp_path: Path) -> Registry:
    registry = Registry(authenticator=keystore, audit_sink=JsonlAuditSink(tmp_path / "a.jsonl"))
    registry.add(_steps_spec("demo.steps"))
    registry.add(_steps_spec("demo.gated", requires_approval=True))
    return registry


async def test_progress_is_forwarded_and_approval_is_an_error(
    demo: Registry, owner: Principal
) -> None:
    seen: list[tuple[float, float | None, str | None]] = []

    async def on_progress(progress: float, total: float | None, message: str | None) -> None:
        seen.append((progress, total, message))

    async with Client(build_mcp(demo, principal=owner), progress_handler=on_progress) as client:
        result = await client.call_tool("demo.steps", {"steps": 3})
        gated = await client.call_tool("demo.gated", {"steps": 1}, raise_on_error=False)
    assert _payload(result) == {"done": 3}
    assert seen == [(1, 3, "step 1"), (2, 3, "step 2"), (3, 3, "step 3")]
    assert gated.is_error and _payload(gated)["error"]["code"] == "approval_required"


@pytest.fixture
async def base_url(registry: Registry, settings: Settings) -> AsyncIterator[str]:
    async with serve(registry, settings, write_run_file=True) as url:
        yield url


async def test_mcp_over_http_uses_each_request_bearer(
    base_url: str, admin_key: str, keystore: KeyStore
) -> None:
    transport = StreamableHttpTransport(
        f"{base_url}/mcp/", auth=admin_key, headers={"X-Trace-Id": "mcp-trace-0001"}
    )
    async with Client(transport) as client:
        info = await client.call_tool("platform.info", {})
        missing = await client.call_tool("server.get", {"name": "h-1"}, raise_on_error=False)
    assert _payload(info)["pid"] == os.getpid()
    assert _payload(missing)["trace_id"] == "mcp-trace-0001"
    viewer = keystore.create("vic", ["viewer"])
    async with Client(f"{base_url}/mcp", auth=viewer) as client:
        assert not (await client.call_tool("server.list", {})).is_error
        denied = await client.call_tool("server.register", {"name": "h-2"}, raise_on_error=False)
    assert _payload(denied)["error"]["code"] == "forbidden"
    with pytest.raises(MCPError):
        async with Client(f"{base_url}/mcp/") as client:
            await client.list_tools()
    async with httpx.AsyncClient() as raw:
        refused = await raw.post(f"{base_url}/mcp/", json={"jsonrpc": "2.0", "id": 1})
    assert refused.status_code == 401 and refused.json()["error"]["code"] == "unauthenticated"


async def test_stdio_serves_in_process_with_the_owner(registry: Registry) -> None:
    async with Client(mcp_stdio()) as client:
        names = {tool.name for tool in await client.list_tools()}
        info = await client.call_tool("platform.info", {})
        missing = await client.call_tool("server.get", {"name": "s-1"}, raise_on_error=False)
    assert names == {spec.name for spec in registry.list()}
    assert _payload(info)["pid"] != os.getpid()
    assert _payload(missing)["error"]["code"] == "not_found"


async def test_stdio_proxies_to_a_running_platform(base_url: str) -> None:
    async with Client(mcp_stdio()) as client:
        info = await client.call_tool("platform.info", {})
        missing = await client.call_tool("server.get", {"name": "p-1"}, raise_on_error=False)
    assert _payload(info)["pid"] == os.getpid()  # answered by the platform in this process
    assert missing.is_error and _payload(missing)["error"]["code"] == "not_found"
