"""Every listener (the platform's HTTP daemon and the orchestrator's API both run on
`AsgiServer`) bounds slow and greedy clients: a request head or body that never
completes is cut off after its timeout, and connections past the cap are refused with
an `unavailable` envelope while the ones already open keep working. Real sockets."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from daemons.common.asgi import AsgiServer
from daemons.common.settings import HttpLimits, Settings

DEADLINE_S = 10.0
"""How long a test waits for the server to act (it should take the configured timeout)."""


async def _echo(request: Request) -> JSONResponse:
    return JSONResponse({"ok": True, "size": len(await request.body())})


@pytest.fixture
def app() -> Starlette:
    return Starlette(routes=[Route("/", _echo, methods=["GET", "POST"])])


async def _serve(app: Starlette, limits: HttpLimits) -> AsyncIterator[AsgiServer]:
    server = AsgiServer(app, limits=limits)
    await server.start()
    try:
        yield server
    finally:
        await server.stop()


@pytest.fixture
async def slow_guarded(
    app: Starlette, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[AsgiServer]:
    """Timeouts from the environment, as a deployment would set them."""
    monkeypatch.setenv("PRVNG_HTTP_HEADER_TIMEOUT_S", "0.3")
    monkeypatch.setenv("PRVNG_HTTP_BODY_TIMEOUT_S", "0.3")
    async for server in _serve(app, Settings.from_env().http):
        yield server


async def _connect(server: AsgiServer) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    host, port = server.url.removeprefix("http://").rsplit(":", 1)
    return await asyncio.open_connection(host, int(port))


async def _read_to_eof(reader: asyncio.StreamReader) -> bytes:
    """What the server sends before it closes the connection (or TimeoutError if never)."""
    async with asyncio.timeout(DEADLINE_S):
        return await reader.read()


async def test_a_partial_request_head_is_cut_off_after_the_header_timeout(
    slow_guarded: AsgiServer,
) -> None:
    reader, writer = await _connect(slow_guarded)
    try:
        writer.write(b"GET / HTTP/1.1\r\nHost: x\r\nX-Slow: ")  # never finished
        await writer.drain()
        answer = await _read_to_eof(reader)
    finally:
        writer.close()
    assert answer.startswith(b"HTTP/1.1 408 ")


async def test_a_connection_that_sends_nothing_is_closed(slow_guarded: AsgiServer) -> None:
    reader, writer = await _connect(slow_guarded)
    try:
        assert await _read_to_eof(reader) == b""
    finally:
        writer.close()


async def test_a_body_that_never_arrives_is_cut_off_after_the_body_timeout(
    slow_guarded: AsgiServer,
) -> None:
    reader, writer = await _connect(slow_guarded)
    try:
        writer.write(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n0123456789")
        await writer.drain()
        answer = await _read_to_eof(reader)
    finally:
        writer.close()
    assert b" 200 " not in answer


async def test_a_trickling_head_does_not_extend_its_deadline(slow_guarded: AsgiServer) -> None:
    reader, writer = await _connect(slow_guarded)
    closed = asyncio.create_task(_read_to_eof(reader))
    try:
        writer.write(b"GET / HTTP/1.1\r\n")
        while not closed.done():  # one header byte at a time, as slowloris does
            writer.write(b"X")
            await asyncio.wait({closed}, timeout=0.05)
    except ConnectionError:
        pass  # the server closed while we were writing: that is the point
    finally:
        writer.close()
    assert (await closed).startswith(b"HTTP/1.1 408 ")


async def test_a_well_behaved_client_is_served_across_keep_alive_requests(
    slow_guarded: AsgiServer,
) -> None:
    async with httpx.AsyncClient(base_url=slow_guarded.url) as client:
        for size in (0, 10, 100_000):
            response = await client.post("/", content=b"x" * size)
            assert response.json() == {"ok": True, "size": size}


async def test_connections_past_the_cap_are_refused_and_open_ones_keep_working(
    app: Starlette,
) -> None:
    async for server in _serve(app, HttpLimits(max_connections=2)):
        async with (
            httpx.AsyncClient(base_url=server.url) as first,
            httpx.AsyncClient(base_url=server.url) as second,
            httpx.AsyncClient(base_url=server.url) as third,
        ):
            assert (await first.get("/")).status_code == 200
            assert (await second.get("/")).status_code == 200
            refused = await third.get("/")
            assert refused.status_code == 503
            body = json.loads(refused.content)
            assert body["ok"] is False and body["error"]["code"] == "unavailable"
            assert "2 connections" in body["error"]["message"]
            assert (await first.get("/")).status_code == 200
            assert (await second.get("/")).status_code == 200
        async with httpx.AsyncClient(base_url=server.url) as later:
            assert (await later.get("/")).status_code == 200  # a slot freed up


def test_limits_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PRVNG_HTTP_MAX_CONNECTIONS", "7")
    monkeypatch.setenv("PRVNG_HTTP_IDLE_TIMEOUT_S", "3")
    limits = Settings.from_env().http
    assert (limits.max_connections, limits.idle_timeout_s) == (7, 3)
    monkeypatch.setenv("PRVNG_HTTP_HEADER_TIMEOUT_S", "soon")
    with pytest.raises(ValueError, match="PRVNG_HTTP_HEADER_TIMEOUT_S must be a number"):
        Settings.from_env()
