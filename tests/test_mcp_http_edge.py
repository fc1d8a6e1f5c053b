"""MCP over HTTP at its edge: Host/Origin checks against DNS rebinding, and sessions that
belong to the principal that opened them. Real requests against a served platform."""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest

from daemons.common.keystore import KeyStore
from daemons.common.settings import Settings
from registry import Registry
from servers.supervisor import serve

INIT = {
    "jsonrpc": "2.0",
    "id": 1,
    "method": "initialize",
    "params": {
        "protocolVersion": "2025-06-18",
        "capabilities": {},
        "clientInfo": {"name": "edge-test", "version": "1"},
    },
}
LIST = {"jsonrpc": "2.0", "id": 2, "method": "tools/list"}
ACCEPT = {"Accept": "application/json, text/event-stream"}


def _auth(key: str, **extra: str) -> dict[str, str]:
    return {**ACCEPT, "Authorization": f"Bearer {key}", **extra}


@pytest.fixture
async def served(
    registry: Registry, settings: Settings
) -> AsyncIterator[tuple[httpx.AsyncClient, str]]:
    allowed = dataclasses.replace(
        settings, allowed_hosts=("mcp.example",), allowed_origins=("https://ui.example",)
    )
    async with serve(registry, allowed) as url, httpx.AsyncClient(base_url=url) as client:
        yield client, urlsplit(url).netloc


def _refused(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    body = response.json()
    assert body["ok"] is False and body["error"]["code"] == code
    return dict(body["error"])


@pytest.mark.parametrize(
    ("headers", "named"),
    [
        ({"Host": "evil.example"}, "Host"),
        ({"Host": "evil.example:8080"}, "Host"),
        ({"Origin": "http://evil.example"}, "Origin"),
        ({"Origin": "null"}, "Origin"),
    ],
)
async def test_a_foreign_host_or_origin_is_refused(
    served: tuple[httpx.AsyncClient, str], admin_key: str, headers: dict[str, str], named: str
) -> None:
    client, _ = served
    error = _refused(
        await client.post("/mcp/", json=INIT, headers=_auth(admin_key, **headers)), 403, "forbidden"
    )
    assert named in error["message"]


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Host": "localhost"},
        {"Host": "mcp.example"},
        {"Origin": "https://ui.example"},
    ],
)
async def test_listen_addresses_and_the_allow_lists_are_accepted(
    served: tuple[httpx.AsyncClient, str], admin_key: str, headers: dict[str, str]
) -> None:
    client, netloc = served
    if headers == {}:
        headers = {"Origin": f"http://{netloc}"}  # same origin (the web UI)
    response = await client.post("/mcp/", json=INIT, headers=_auth(admin_key, **headers))
    assert response.status_code == 200 and response.headers["mcp-session-id"]


async def test_a_session_belongs_to_the_principal_that_opened_it(
    served: tuple[httpx.AsyncClient, str], admin_key: str, keystore: KeyStore
) -> None:
    client, _ = served
    opened = await client.post("/mcp/", json=INIT, headers=_auth(admin_key))
    session = opened.headers["mcp-session-id"]
    mine = _auth(admin_key, **{"Mcp-Session-Id": session})
    done = {"jsonrpc": "2.0", "method": "notifications/initialized"}
    assert (await client.post("/mcp/", json=done, headers=mine)).status_code == 202
    other = _auth(keystore.create("eve", ["admin"]), **{"Mcp-Session-Id": session})

    _refused(await client.post("/mcp/", json=LIST, headers=other), 404, "not_found")
    _refused(await client.delete("/mcp/", headers=other), 404, "not_found")

    listed = await client.post("/mcp/", json=LIST, headers=mine)  # it survived both
    assert listed.status_code == 200 and "tools" in listed.text
    assert (await client.delete("/mcp/", headers=mine)).status_code in (200, 204)
    _refused(await client.post("/mcp/", json=LIST, headers=mine), 404, "not_found")
