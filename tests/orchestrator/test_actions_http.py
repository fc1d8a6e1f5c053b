"""The `http` action against a real HTTP server on a 127.0.0.1 socket (uvicorn + Starlette)."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator
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


@pytest.fixture
def ctx(tmp_path: Path, settings: Settings) -> ActionContext:
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
