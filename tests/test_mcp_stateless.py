"""Stateless `/mcp` (`PRVNG_MCP_STATELESS`): real MCP clients over real sockets, each
request authenticated on its own, every edge guarantee of the stateful mode, and two
instances serving one client's calls alternately (a load balancer without sticky sessions).

The sessions that stateless mode gives up belong to the `initialize` handshake (protocol
revisions up to 2025-11-25), so the clients here are the SDK's `ClientSession` doing that
handshake; FastMCP's own client first tries the sessionless 2026 revision, which every
mode answers (`test_a_fastmcp_client_works_too`)."""

from __future__ import annotations

import dataclasses
import itertools
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
import httpx2
import pytest
from fastmcp import Client
from fastmcp.client.transports import StreamableHttpTransport
from mcp import ClientSession
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.exceptions import MCPError

from daemons.common.keystore import KeyStore
from daemons.common.settings import Settings
from registry import Principal, Registry
from servers.assembly import build_registry
from servers.http.app import create_app
from servers.supervisor import serve

INIT = {
    "jsonrpc": "2.0",
    "id": 1,
    "method": "initialize",
    "params": {
        "protocolVersion": "2025-06-18",
        "capabilities": {},
        "clientInfo": {"name": "stateless-test", "version": "1"},
    },
}
ACCEPT = {"Accept": "application/json, text/event-stream"}
TRACE = "0af7651916cd43dd8448eb211c80319c"


def _call(name: str, arguments: dict[str, Any], request_id: int | str = 7) -> dict[str, Any]:
    params = {"name": name, "arguments": arguments}
    return {"jsonrpc": "2.0", "id": request_id, "method": "tools/call", "params": params}


def _auth(key: str, **extra: str) -> dict[str, str]:
    return {**ACCEPT, "Authorization": f"Bearer {key}", **extra}


def _stateless(settings: Settings, **changes: Any) -> Settings:
    return dataclasses.replace(settings, mcp_stateless=True, **changes)


def _payload(result: Any) -> dict[str, Any]:
    (text,) = result.content
    assert json.loads(text.text) == result.structured_content
    return dict(result.structured_content)


@asynccontextmanager
async def _legacy(
    url: str, key: str | None, transport: httpx2.AsyncBaseTransport | None = None
) -> AsyncIterator[ClientSession]:
    """An MCP client session opened with `initialize` (the handshake era)."""
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    http = httpx2.AsyncClient(headers=headers, transport=transport, timeout=30)
    async with (
        http,
        streamable_http_client(url, http_client=http) as (read, write),
        ClientSession(read, write) as session,
    ):
        await session.initialize()
        yield session


@pytest.fixture
async def base_url(registry: Registry, settings: Settings) -> AsyncIterator[str]:
    async with serve(registry, _stateless(settings)) as url:
        yield url


async def test_a_real_client_initializes_lists_and_calls(
    base_url: str, registry: Registry, admin_key: str, keystore: KeyStore
) -> None:
    async with _legacy(f"{base_url}/mcp/", admin_key) as session:
        assert session.protocol_version == "2025-11-25"
        names = {tool.name for tool in (await session.list_tools()).tools}
        created = await session.call_tool("server.register", {"name": "sl-1"})
        again = await session.call_tool("server.register", {"name": "sl-1"})
        missing = await session.call_tool("server.get", {"name": "sl-2"})
        unknown = await session.call_tool("no.such_tool", {})
    assert names == {spec.name for spec in registry.list()}
    assert _payload(created)["name"] == "sl-1"
    assert again.is_error and _payload(again)["error"]["code"] == "conflict"
    assert missing.is_error and set(_payload(missing)) == {"error", "trace_id"}
    assert _payload(missing)["error"]["code"] == "not_found"
    assert unknown.is_error and _payload(unknown)["error"]["code"] == "not_found"
    viewer = keystore.create("vic", ["viewer"])
    async with _legacy(f"{base_url}/mcp", viewer) as session:
        assert "server.register" not in {tool.name for tool in (await session.list_tools()).tools}
        denied = await session.call_tool("server.register", {"name": "sl-3"})
    assert _payload(denied)["error"]["code"] == "forbidden"
    with pytest.raises(ExceptionGroup) as refused:
        async with _legacy(f"{base_url}/mcp/", None) as session:
            await session.list_tools()
    assert refused.group_contains(MCPError)


async def test_a_fastmcp_client_works_too(base_url: str, admin_key: str) -> None:
    async with Client(StreamableHttpTransport(f"{base_url}/mcp/", auth=admin_key)) as client:
        info = await client.call_tool("platform.info", {})
        missing = await client.call_tool("server.get", {"name": "f-1"}, raise_on_error=False)
    assert not info.is_error and _payload(missing)["error"]["code"] == "not_found"


async def test_plain_posts_need_no_session_and_answer_json(base_url: str, admin_key: str) -> None:
    async with httpx.AsyncClient(base_url=base_url, headers=_auth(admin_key)) as raw:
        opened = await raw.post("/mcp/", json=INIT)
        # No initialize first, no session id: a plain POST is a whole exchange.
        info = await raw.post("/mcp/", json=_call("platform.info", {}))
        listed = await raw.post("/mcp/", json={"jsonrpc": "2.0", "id": 2, "method": "tools/list"})
        only_json = await raw.post(
            "/mcp/", json=_call("platform.info", {}), headers={"Accept": "application/json"}
        )
        unauthorized = await raw.post(
            "/mcp/", json=_call("platform.info", {}), headers={"Authorization": ""}
        )
        stream = await raw.get("/mcp/", headers={"Accept": "text/event-stream"})
    for response in (opened, info, listed, only_json):
        assert response.status_code == 200, response.text
        assert response.headers["content-type"].startswith("application/json")
        assert "mcp-session-id" not in response.headers
    assert opened.json()["result"]["serverInfo"]["name"] == "provisioning-platform"
    assert info.json()["id"] == 7 and info.json()["result"]["isError"] is False
    assert listed.json()["result"]["tools"]
    assert unauthorized.status_code == 401
    assert unauthorized.json()["error"]["code"] == "unauthenticated"
    assert stream.status_code == 405 and stream.headers["allow"] == "POST"
    assert stream.json()["error"]["code"] == "method_not_allowed"


async def test_direct_calls_answer_what_the_sdk_answers(
    registry: Registry, settings: Settings, admin_key: str, owner: Principal
) -> None:
    """A stateless JSON call skips the SDK's transport; its answer must not differ from the
    SDK's own (a stateful session in JSON mode), for results and for errors."""
    assert (await registry.invoke("server.register", {"name": "same-1"}, principal=owner)).ok
    headers = _auth(admin_key, **{"X-Trace-Id": TRACE})
    calls = [
        _call("server.get", {"name": "same-1"}, 3),
        _call("server.list", {}, 4),
        _call("server.get", {"name": "same-2"}, "five"),  # ids may be strings
        _call("server.list", {"limit": 0}, 6),
        _call("platform.health", {}, 8),
    ]
    sdk = dataclasses.replace(settings, mcp_json_response=True)
    answers: dict[str, list[Any]] = {}
    for label, mode in (("direct", _stateless(settings)), ("sdk", sdk)):
        async with serve(registry, mode) as url, httpx.AsyncClient(base_url=url) as raw:
            opened = await raw.post("/mcp/", json=INIT, headers=headers)
            session = opened.headers.get("mcp-session-id")
            sent = {**headers, **({"Mcp-Session-Id": session} if session else {})}
            done = {"jsonrpc": "2.0", "method": "notifications/initialized"}
            assert (await raw.post("/mcp/", json=done, headers=sent)).status_code == 202
            replies = [await raw.post("/mcp/", json=call, headers=sent) for call in calls]
        assert all(r.headers["content-type"].startswith("application/json") for r in replies)
        answers[label] = [r.json() for r in replies]
    assert (session is not None) and answers["direct"] == answers["sdk"]
    assert [a["result"]["isError"] for a in answers["direct"]] == [False, False, True, True, False]


async def test_a_stateless_json_call_needs_no_sdk_transport(
    registry: Registry, settings: Settings, admin_key: str
) -> None:
    """The direct path really is taken: with the SDK's session manager not started (the
    app's lifespan never entered), a call is still answered and a listing is not."""
    app = create_app(registry, _stateless(settings))
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1") as raw:
        called = await raw.post("/mcp/", json=_call("platform.info", {}), headers=_auth(admin_key))
        listed = await raw.post(
            "/mcp/",
            json={"jsonrpc": "2.0", "id": 2, "method": "tools/list"},
            headers=_auth(admin_key),
        )
    assert called.status_code == 200 and called.json()["result"]["isError"] is False
    assert listed.status_code == 500


@pytest.fixture
async def guarded(registry: Registry, settings: Settings) -> AsyncIterator[str]:
    mode = _stateless(
        settings,
        allowed_hosts=("mcp.example",),
        allowed_origins=("https://ui.example",),
        max_body_bytes=4096,
    )
    async with serve(registry, mode) as url:
        yield url


@pytest.mark.parametrize(
    ("headers", "named"),
    [({"Host": "evil.example"}, "Host"), ({"Origin": "http://evil.example"}, "Origin")],
)
@pytest.mark.parametrize("message", [INIT, _call("platform.info", {})])
async def test_foreign_hosts_and_origins_are_refused_on_every_message(
    guarded: str, admin_key: str, headers: dict[str, str], named: str, message: dict[str, Any]
) -> None:
    async with httpx.AsyncClient(base_url=guarded) as raw:
        refused = await raw.post("/mcp/", json=message, headers=_auth(admin_key, **headers))
        allowed = await raw.post(
            "/mcp/", json=message, headers=_auth(admin_key, Origin="https://ui.example")
        )
    assert refused.status_code == 403 and refused.json()["error"]["code"] == "forbidden"
    assert named in refused.json()["error"]["message"]
    assert allowed.status_code == 200, allowed.text


async def test_the_body_limit_and_strict_json_hold(guarded: str, admin_key: str) -> None:
    big = _call("server.register", {"name": "x" * 8192})
    async with httpx.AsyncClient(base_url=guarded, headers=_auth(admin_key)) as raw:
        too_big = await raw.post("/mcp/", json=big)
        twice = await raw.post(
            "/mcp/",
            content=b'{"jsonrpc": "2.0", "id": 1, "id": 2, "method": "tools/call"}',
            headers={"Content-Type": "application/json"},
        )
    assert too_big.status_code == 413 and too_big.json()["error"]["code"] == "payload_too_large"
    assert twice.status_code == 400 and twice.json()["error"]["code"] == -32700


async def test_each_request_is_its_own_principal(
    base_url: str, admin_key: str, keystore: KeyStore
) -> None:
    """No session to steal: a session id, made up or seen elsewhere, grants nothing; the
    bearer of the request itself decides."""
    viewer = keystore.create("val", ["viewer"])
    register = _call("server.register", {"name": "own-1"})
    session = {"Mcp-Session-Id": "admin-session"}
    async with httpx.AsyncClient(base_url=base_url) as raw:
        # The write first: a refusal's audit record, written meanwhile, could collide with
        # it in the embedded store (a conflict the state store does not retry).
        as_admin = await raw.post("/mcp/", json=register, headers=_auth(admin_key, **session))
        as_viewer = await raw.post("/mcp/", json=register, headers=_auth(viewer, **session))
    assert as_admin.json()["result"]["isError"] is False, as_admin.text
    assert as_viewer.json()["result"]["structuredContent"]["error"]["code"] == "forbidden"


async def test_toolsets_narrow_the_listing_and_unknown_ones_are_refused(
    base_url: str, admin_key: str
) -> None:
    async with _legacy(f"{base_url}/mcp/?toolsets=servers", admin_key) as session:
        names = {tool.name for tool in (await session.list_tools()).tools}
        assert not (await session.call_tool("platform.info", {})).is_error  # still callable
    assert names and all(name.startswith("server.") for name in names)
    async with httpx.AsyncClient(base_url=base_url, headers=_auth(admin_key)) as raw:
        refused = await raw.post("/mcp/?toolsets=servers,nukes", json=_call("platform.info", {}))
    assert refused.status_code == 422 and refused.json()["error"]["code"] == "invalid_input"


async def test_calls_are_rate_limited_per_principal(
    registry: Registry, settings: Settings, admin_key: str
) -> None:
    limited = _stateless(settings, rate_limits="read=2/min")
    tight = build_registry(limited, keystore=KeyStore(limited))
    try:
        async with serve(tight, limited) as url, _legacy(f"{url}/mcp/", admin_key) as session:
            results = [await session.call_tool("platform.info", {}) for _ in range(3)]
    finally:
        await tight.aclose()
    assert [r.is_error for r in results] == [False, False, True]
    assert _payload(results[2])["error"]["code"] == "rate_limited"


class _RoundRobin(httpx2.AsyncBaseTransport):
    """A load balancer without sticky sessions: each request goes to the next instance."""

    def __init__(self, ports: list[int]) -> None:
        self._inner = httpx2.AsyncHTTPTransport()
        self._ports = itertools.cycle(ports)
        self.served: list[tuple[str, int]] = []

    async def handle_async_request(self, request: httpx2.Request) -> httpx2.Response:
        port = next(self._ports)
        self.served.append((request.method, port))
        request.url = request.url.copy_with(port=port)
        return await self._inner.handle_async_request(request)

    async def aclose(self) -> None:
        await self._inner.aclose()


@pytest.mark.parametrize("stateless", [True, False])
async def test_two_instances_serve_one_client_alternately(
    settings: Settings, admin_key: str, stateless: bool
) -> None:
    """Two instances on one PRVNG_HOME (each its own registry, as two daemons would have):
    stateless, either answers any request; stateful, the other one knows no session."""
    mode = dataclasses.replace(settings, mcp_stateless=stateless)
    first = build_registry(mode, keystore=KeyStore(mode))
    second = build_registry(mode, keystore=KeyStore(mode))
    try:
        async with serve(first, mode) as one, serve(second, mode) as two:
            ports = [httpx.URL(url).port or 0 for url in (one, two)]
            balancer = _RoundRobin(ports)
            if not stateless:
                with pytest.raises(ExceptionGroup) as lost:
                    async with _legacy(f"{one}/mcp/", admin_key, balancer) as session:
                        await session.list_tools()
                assert lost.group_contains(MCPError)
                return
            async with _legacy(f"{one}/mcp/", admin_key, balancer) as session:
                listed = (await session.list_tools()).tools
                results = [await session.call_tool("platform.info", {}) for _ in range(4)]
    finally:
        await first.aclose()
        await second.aclose()
    assert listed and not any(r.is_error for r in results)
    pids = {_payload(r)["pid"] for r in results}
    assert len(pids) == 1  # one process here; the ports say both instances answered
    posts = [port for method, port in balancer.served if method == "POST"]
    assert len(posts) >= 7 and set(posts) == set(ports)
    assert all(a != b for a, b in itertools.pairwise(posts))


@pytest.mark.parametrize(
    ("env", "content_type"),
    [
        ({"PRVNG_MCP_STATELESS": "1"}, "application/json"),
        ({"PRVNG_MCP_STATELESS": "on", "PRVNG_MCP_JSON_RESPONSE": "0"}, "text/event-stream"),
    ],
)
async def test_the_environment_picks_the_mode(
    registry: Registry,
    admin_key: str,
    monkeypatch: pytest.MonkeyPatch,
    env: dict[str, str],
    content_type: str,
) -> None:
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    async with (
        serve(registry, Settings.from_env()) as url,
        httpx.AsyncClient(base_url=url, headers=_auth(admin_key)) as raw,
    ):
        opened = await raw.post("/mcp/", json=INIT)
        called = await raw.post("/mcp/", json=_call("server.get", {"name": "env-1"}))
    assert opened.status_code == 200 and "mcp-session-id" not in opened.headers
    assert called.status_code == 200 and called.headers["content-type"].startswith(content_type)
    assert '"isError":true' in called.text and "not_found" in called.text


def test_a_misspelt_switch_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PRVNG_MCP_STATELESS", "yes please")
    with pytest.raises(ValueError, match="PRVNG_MCP_STATELESS must be on or off"):
        Settings.from_env()
