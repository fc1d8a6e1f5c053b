"""Bad input over MCP gets the answer every other tier gives: parse errors on stdio, the body
limit and its envelope on `/mcp`, a structured `not_found` for an unknown tool, and the
platform's version in `serverInfo` on every transport."""

from __future__ import annotations

import dataclasses
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
from fastmcp.client.transports import StdioTransport, StreamableHttpTransport
from subprocesses import read_line

from daemons.common.settings import Settings
from daemons.common.version import platform_version
from registry import Principal, Registry
from servers.mcp import build_mcp
from servers.supervisor import serve

PRVNG = str(Path(sys.executable).with_name("prvng"))
INIT = {
    "jsonrpc": "2.0",
    "id": 1,
    "method": "initialize",
    "params": {
        "protocolVersion": "2025-06-18",
        "capabilities": {},
        "clientInfo": {"name": "raw", "version": "0"},
    },
}


def _send(proc: subprocess.Popen[bytes], line: bytes) -> None:
    assert proc.stdin is not None
    proc.stdin.write(line + b"\n")
    proc.stdin.flush()


def _answer(proc: subprocess.Popen[bytes]) -> dict[str, Any]:
    answer: dict[str, Any] = json.loads(read_line(proc, 20))  # type: ignore[arg-type]
    return answer


def test_stdio_answers_bad_lines_with_parse_errors() -> None:
    proc = subprocess.Popen(
        [PRVNG, "mcp"], stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL
    )
    try:
        _send(proc, json.dumps(INIT).encode())
        info = _answer(proc)["result"]["serverInfo"]
        assert info["version"] == platform_version()
        _send(proc, b'{"jsonrpc": "2.0", "method": "notifications/initialized"}')
        for bad, words in (
            (b'{"jsonrpc": "2.0", "id": 2, "method": ', "not valid JSON"),
            (b'{"jsonrpc": "2.0", "id": 3, "method": "tools/list", "id": 4}', "twice"),
            (b'{"jsonrpc": "2.0", "id": 5, "method": "caf\xe9"}', "not UTF-8"),
        ):
            _send(proc, bad)
            error = _answer(proc)["error"]
            assert error["code"] == -32700 and words in error["message"], error
            assert error["data"]["code"] == "invalid_input"
        # The session goes on: a good request after bad ones is answered.
        _send(proc, json.dumps({"jsonrpc": "2.0", "id": 6, "method": "tools/list"}).encode())
        assert _answer(proc)["id"] == 6
    finally:
        proc.kill()
        proc.communicate()  # reaps it and closes the pipes


async def test_an_unknown_tool_is_a_structured_not_found(
    registry: Registry, owner: Principal
) -> None:
    async with Client(build_mcp(registry, principal=owner)) as client:
        result = await client.call_tool_mcp("no.such_tool", {})
    assert result.is_error
    content = result.structured_content or {}
    assert content["error"]["code"] == "not_found" and content["trace_id"]
    assert content["error"]["details"] == {"tool": "no.such_tool"}


@pytest.fixture
async def small(
    registry: Registry, settings: Settings, admin_key: str
) -> AsyncIterator[tuple[str, str]]:
    limited = dataclasses.replace(settings, max_body_bytes=4096)
    async with serve(registry, limited, write_run_file=True) as url:
        yield url, admin_key


async def test_http_mcp_honours_the_body_limit(small: tuple[str, str]) -> None:
    url, key = small
    headers = {
        "Authorization": f"Bearer {key}",
        "Accept": "application/json, text/event-stream",
    }
    call = {"jsonrpc": "2.0", "id": 1, "method": "tools/list", "params": {"pad": "x" * 8192}}
    async with httpx.AsyncClient() as raw:
        big = await raw.post(f"{url}/mcp/", json=call, headers=headers)
        twice = await raw.post(
            f"{url}/mcp/",
            content=b'{"jsonrpc": "2.0", "id": 1, "id": 2, "method": "tools/list"}',
            headers={**headers, "Content-Type": "application/json"},
        )
    assert big.status_code == 413, big.text
    body = big.json()
    assert body["ok"] is False and body["error"]["code"] == "payload_too_large"
    assert body["error"]["details"]["limit"] == 4096
    assert twice.status_code == 400, twice.text
    assert twice.json()["error"]["code"] == -32700
    assert twice.json()["error"]["data"]["code"] == "invalid_input"


async def test_server_version_is_the_platforms_on_every_transport(
    small: tuple[str, str], registry: Registry, owner: Principal
) -> None:
    url, key = small
    async with Client(StreamableHttpTransport(f"{url}/mcp/", auth=key)) as client:
        assert client.server_info is not None
        assert client.server_info.version == platform_version()
    # `prvng mcp` with a platform running on its home: the stdio proxy.
    proxy = StdioTransport(PRVNG, ["mcp"], env=dict(os.environ), keep_alive=False)
    async with Client(proxy) as client:
        assert client.server_info is not None
        assert client.server_info.version == platform_version()
        missing = await client.call_tool_mcp("no.such_tool", {})
    assert missing.is_error
    assert (missing.structured_content or {})["error"]["code"] == "not_found"
