"""The `http` action against a real HTTP server on a 127.0.0.1 socket (uvicorn + Starlette)."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path

import pytest
import uvicorn
from pydantic import ValidationError
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from daemons.common.settings import Settings
from daemons.orchestrator.actions import ActionContext, ActionError
from daemons.orchestrator.actions.http_request import BODY_CAP, HttpAction, HttpParams


async def _echo(request: Request) -> Response:
    body = await request.body()
    return JSONResponse(
        {
            "method": request.method,
            "idempotency_key": request.headers.get("idempotency-key"),
            "x_team": request.headers.get("x-team"),
            "json": (await request.json()) if body else None,
        }
    )


async def _status(request: Request) -> Response:
    code = int(request.path_params["code"])
    return PlainTextResponse("" if code == 204 else f"status {code}", status_code=code)


async def _host(request: Request) -> Response:
    return PlainTextResponse(request.headers.get("host", ""))


async def _redirect(request: Request) -> Response:
    return Response(status_code=302, headers={"Location": "http://169.254.169.254/"})


async def _big(request: Request) -> Response:
    return PlainTextResponse("x" * (BODY_CAP * 3))


@pytest.fixture
async def base_url() -> AsyncIterator[str]:
    release = asyncio.Event()

    async def _slow(request: Request) -> Response:
        await release.wait()
        return PlainTextResponse("late")

    app = Starlette(
        routes=[
            Route("/echo", _echo, methods=["GET", "POST", "PUT", "DELETE"]),
            Route("/status/{code}", _status),
            Route("/big", _big),
            Route("/host", _host),
            Route("/redirect", _redirect),
            Route("/slow", _slow),
        ]
    )
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen()  # connections queue from here on: no readiness wait needed
    server = uvicorn.Server(
        uvicorn.Config(app, lifespan="off", ws="none", log_level="warning", access_log=False)
    )
    serving = asyncio.create_task(server.serve(sockets=[sock]))
    try:
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    finally:
        release.set()
        server.should_exit = True
        await serving
        sock.close()


LOOPBACK_ALLOWED = ("127.0.0.0/8", "::1/128")
"""These tests' server listens on loopback, which the action refuses unless allowed."""


@pytest.fixture
def ctx(tmp_path: Path, settings: Settings) -> ActionContext:
    return _context(tmp_path, replace(settings, http_action_allow=LOOPBACK_ALLOWED))


@pytest.fixture
def strict_ctx(tmp_path: Path, settings: Settings) -> ActionContext:
    """The default: nothing internal allowed."""
    return _context(tmp_path, settings)


def _context(tmp_path: Path, settings: Settings) -> ActionContext:
    return ActionContext(
        workflow_id="wf-1",
        task_id="call",
        attempt=1,
        idempotency_key="wf-1/call",
        workspace=tmp_path / "work",
        settings=settings,
        log=lambda _stream, _text: None,
    )


async def call(ctx: ActionContext, **params: object) -> dict[str, object]:
    return await HttpAction().run(HttpParams.model_validate(params), ctx)


async def test_post_json_with_headers_and_the_idempotency_key(
    ctx: ActionContext, base_url: str
) -> None:
    result = await call(
        ctx,
        method="POST",
        url=f"{base_url}/echo",
        json={"a": [1, 2]},
        headers={"X-Team": "web", "Idempotency-Key": "forged"},
    )
    assert result == {
        "status": 200,
        "body": {
            "method": "POST",
            "idempotency_key": "wf-1/call",
            "x_team": "web",
            "json": {"a": [1, 2]},
        },
        "truncated": False,
    }


async def test_expected_status_may_be_a_list(ctx: ActionContext, base_url: str) -> None:
    result = await call(ctx, url=f"{base_url}/status/204", expected_status=[201, 204])
    assert result == {"status": 204, "body": "", "truncated": False}
    result = await call(ctx, url=f"{base_url}/status/404", expected_status=404)
    assert result["status"] == 404 and result["body"] == "status 404"


@pytest.mark.parametrize(
    ("code", "retryable"), [(404, False), (400, False), (408, True), (429, True), (503, True)]
)
async def test_unexpected_status_fails_with_retry_advice(
    ctx: ActionContext, base_url: str, code: int, retryable: bool
) -> None:
    with pytest.raises(ActionError, match=f"answered {code}") as failed:
        await call(ctx, url=f"{base_url}/status/{code}")
    assert failed.value.retryable is retryable
    assert failed.value.details["status"] == code
    assert failed.value.details["body"] == f"status {code}"


async def test_a_large_body_is_capped(ctx: ActionContext, base_url: str) -> None:
    result = await call(ctx, url=f"{base_url}/big")
    assert result["truncated"] is True and result["body"] == "x" * BODY_CAP


async def test_a_timeout_is_retryable(ctx: ActionContext, base_url: str) -> None:
    with pytest.raises(ActionError, match="timed out") as failed:
        await call(ctx, url=f"{base_url}/slow", timeout_s=0.2)
    assert failed.value.retryable


async def test_a_refused_connection_is_retryable(ctx: ActionContext) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # closed when the block ends: nothing listens
    with pytest.raises(ActionError, match="failed") as failed:
        await call(ctx, url=f"http://127.0.0.1:{port}/")
    assert failed.value.retryable


@pytest.mark.parametrize(
    "params",
    [
        {"url": "ftp://example.com/x"},
        {"url": "/relative"},
        {"url": "http://"},
        {"url": "http://h/", "method": "BREW"},
        {"url": "http://h/", "body": "x"},
    ],
)
def test_bad_params_are_refused(params: dict[str, object]) -> None:
    with pytest.raises(ValidationError):
        HttpParams.model_validate(params)


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:{port}/echo",
        "http://127.1.2.3/",
        "http://localhost:{port}/echo",
        "http://0.0.0.0:{port}/",
        "http://[::1]:{port}/",
        "http://[::ffff:127.0.0.1]:{port}/",
        "http://[::ffff:169.254.169.254]/",
        "http://[64:ff9b::7f00:1]/",
        "http://169.254.169.254/latest/meta-data/iam/security-credentials/",
        "http://[fe80::1]/",
        "http://[fd00:ec2::254]/",
    ],
)
async def test_internal_addresses_are_refused_by_default(
    strict_ctx: ActionContext, base_url: str, url: str
) -> None:
    """The finding: an http task reached the platform's own API and would reach a cloud
    metadata service; every internal address (in every spelling) is refused now."""
    port = base_url.rsplit(":", 1)[1]
    with pytest.raises(ActionError, match=r"refused: .* PRVNG_HTTP_ACTION_ALLOW") as failed:
        await call(strict_ctx, url=url.format(port=port))
    assert failed.value.retryable is False


async def test_the_allow_setting_opens_one_network(
    strict_ctx: ActionContext, tmp_path: Path, base_url: str
) -> None:
    only = replace(strict_ctx.settings, http_action_allow=("127.0.0.1/32",))
    result = await call(_context(tmp_path, only), url=f"{base_url}/status/204", expected_status=204)
    assert result["status"] == 204
    with pytest.raises(ActionError, match="refused"):
        await call(_context(tmp_path, only), url=base_url.replace("127.0.0.1", "127.0.0.2"))
    bad = replace(strict_ctx.settings, http_action_allow=("not-a-net",))
    with pytest.raises(ActionError, match="PRVNG_HTTP_ACTION_ALLOW has 'not-a-net'"):
        await call(_context(tmp_path, bad), url=base_url)


async def test_the_checked_address_is_used_and_the_name_kept(
    ctx: ActionContext, base_url: str
) -> None:
    """The request goes to the address that was checked, with the name in `Host`."""
    port = base_url.rsplit(":", 1)[1]
    first = socket.getaddrinfo("localhost", port, type=socket.SOCK_STREAM)[0][4][0]
    if first != "127.0.0.1":
        pytest.skip(f"localhost resolves to {first} first here; the server is on 127.0.0.1")
    result = await call(
        ctx, url=f"http://localhost:{port}/host", headers={"Host": "forged.example"}
    )
    assert result["body"] == f"localhost:{port}"


async def test_redirects_are_not_followed(ctx: ActionContext, base_url: str) -> None:
    with pytest.raises(ActionError, match="answered 302"):
        await call(ctx, url=f"{base_url}/redirect")
    result = await call(ctx, url=f"{base_url}/redirect", expected_status=302)
    assert result["status"] == 302
