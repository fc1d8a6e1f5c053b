"""The MCP listing an assistant reads: within its token budget, compact schemas that say
what the full ones say, only what the caller may call, and toolsets on every transport."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastmcp import Client
from fastmcp.client.transports import StdioTransport
from jsonschema import Draft202012Validator

from daemons.common.keystore import KeyStore
from daemons.common.settings import Settings
from registry import Principal, Registry
from registry.schema import (
    compact_input_schema,
    compact_output_schema,
    inline_refs,
    input_schema,
    output_schema,
)
from registry.toolsets import toolset_of
from servers.mcp import build_mcp
from servers.supervisor import serve

PROJECT = Path(__file__).resolve().parents[1]
PRVNG = str(Path(sys.executable).with_name("prvng"))
TOKENS_PER_TOOL = 300
BYTES_PER_TOKEN = 4


def _listing_bytes(tools: list[Any]) -> list[int]:
    """Each listed tool's size as it goes on the wire (compact JSON, unset fields left out)."""
    return [len(tool.model_dump_json(by_alias=True, exclude_none=True).encode()) for tool in tools]


async def test_the_admin_listing_stays_within_its_token_budget(
    registry: Registry, owner: Principal
) -> None:
    async with Client(build_mcp(registry, principal=owner)) as client:
        tools = (await client.session.list_tools()).tools
    assert len(tools) == len(registry.list())
    sizes = _listing_bytes(tools)
    average_tokens = sum(sizes) / len(sizes) / BYTES_PER_TOKEN
    assert average_tokens < TOKENS_PER_TOOL, (
        f"tools/list averages {average_tokens:.0f} tokens per tool (budget {TOKENS_PER_TOOL})"
    )


def _presentation_free(node: Any, *, output: bool) -> Any:
    """A schema less what only informs a reader: titles, null defaults, `anyOf` of bare
    types as a `type` list; for outputs descriptions, defaults and closed objects too."""
    if isinstance(node, list):
        return [_presentation_free(item, output=output) for item in node]
    if not isinstance(node, dict):
        return node
    notes = ("title", "description", "default") if output else ("title",)
    out = {}
    for key, value in node.items():
        if key in notes or (key == "default" and value is None):
            continue
        if key == "properties":
            out[key] = {k: _presentation_free(v, output=output) for k, v in value.items()}
        elif key in ("enum", "const", "required", "pattern", "default"):
            out[key] = value  # data, not schemas
        else:
            out[key] = _presentation_free(value, output=output)
    if out.get("additionalProperties") is True or (
        output and out.get("additionalProperties") is False
    ):
        del out["additionalProperties"]
    branches = out.get("anyOf", ())
    if len(branches) > 1 and all(list(b) == ["type"] for b in branches):
        out["type"] = [b["type"] for b in out.pop("anyOf")]
    return out


def test_compact_schemas_say_what_the_full_ones_say(registry: Registry) -> None:
    for spec in registry.list():
        full_in = input_schema(spec.input_model)
        compact_in = compact_input_schema(spec.input_model)
        assert "$defs" not in json.dumps(compact_in), f"{spec.name}: an input $ref"
        assert compact_in == _presentation_free(full_in, output=False), spec.name
        full_out = output_schema(spec.output_model)
        compact_out = compact_output_schema(spec.output_model)
        assert inline_refs(compact_out) == _presentation_free(full_out, output=True), spec.name
        Draft202012Validator.check_schema(compact_out)
        # What the pipeline accepts and refuses, the compact input schema does too.
        full, compact = Draft202012Validator(full_in), Draft202012Validator(compact_in)
        for case in spec.cases:
            assert full.is_valid(case.args) is compact.is_valid(case.args), (spec.name, case)
    shared = compact_output_schema(registry.get("task.list").output_model)
    assert "TaskState" in shared["$defs"]  # a repeated enum, defined once


async def test_a_toolset_narrows_the_stdio_listing_but_not_what_may_be_called(
    registry: Registry, owner: Principal
) -> None:
    mcp = build_mcp(registry, principal=owner, toolsets=frozenset({"servers", "access"}))
    async with Client(mcp) as client:
        names = {tool.name for tool in await client.list_tools()}
        info = await client.call_tool("platform.info", {})
    assert names == {s.name for s in registry.list() if toolset_of(s.name) in ("servers", "access")}
    assert "server.register" in names and "apikey.create" in names and "tools.list" not in names
    assert not info.is_error


@pytest.fixture
async def base_url(registry: Registry, settings: Settings) -> AsyncIterator[str]:
    async with serve(registry, settings) as url:
        yield url


async def test_http_lists_the_requested_toolsets_a_caller_may_call(
    base_url: str, admin_key: str, keystore: KeyStore, registry: Registry
) -> None:
    async with Client(f"{base_url}/mcp/?toolsets=servers,tasks", auth=admin_key) as client:
        names = {tool.name for tool in await client.list_tools()}
    assert names == {s.name for s in registry.list() if toolset_of(s.name) in ("servers", "tasks")}
    viewer = keystore.create("vic", ["viewer"])
    async with Client(f"{base_url}/mcp/", auth=viewer) as client:
        seen = {tool.name for tool in await client.list_tools()}
    may = {s.name for s in registry.visible(Principal(id="vic", roles=frozenset({"viewer"})))}
    assert seen == may and "server.list" in seen and "server.register" not in seen


async def test_http_refuses_an_unknown_toolset_naming_the_known_ones(
    base_url: str, admin_key: str
) -> None:
    headers = {"Authorization": f"Bearer {admin_key}", "Accept": "application/json"}
    async with httpx.AsyncClient() as raw:
        response = await raw.post(
            f"{base_url}/mcp/?toolsets=servers,nukes",
            json={"jsonrpc": "2.0", "id": 1, "method": "tools/list"},
            headers=headers,
        )
    assert response.status_code == 422, response.text
    error = response.json()["error"]
    assert error["code"] == "invalid_input" and error["details"]["unknown"] == ["nukes"]
    assert "servers" in error["details"]["toolsets"] and "nukes" in error["message"]


def test_prvng_mcp_refuses_an_unknown_toolset() -> None:
    bad = subprocess.run(
        [PRVNG, "mcp", "--toolsets", "servers,nukes"],
        capture_output=True,
        text=True,
        stdin=subprocess.DEVNULL,
        timeout=60,
    )
    assert bad.returncode == 2 and "nukes" in bad.stderr and "workflows" in bad.stderr


async def test_prvng_mcp_lists_the_toolsets_of_its_flag(registry: Registry) -> None:
    transport = StdioTransport(
        PRVNG, ["mcp", "--toolsets", "workflows"], env=dict(os.environ), cwd=str(PROJECT)
    )
    async with Client(transport) as client:
        names = {tool.name for tool in await client.list_tools()}
    assert names == {s.name for s in registry.list() if s.name.startswith("workflow.")}
