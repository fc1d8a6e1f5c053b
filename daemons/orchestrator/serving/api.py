"""The orchestrator's internal HTTP API (for the controller, the tools in split mode and
`OrchestratorClient`). Answers are platform envelopes; errors use `registry.errors` codes
and statuses. Every route but `/health` needs `Authorization: Bearer <token>`.

    POST /v1/workflows                          submit (body: a WorkflowSpec)
    GET  /v1/workflows?state&label=k=v...&name&limit&cursor
    GET  /v1/workflows/{id}
    POST /v1/workflows/{id}/cancel|rollback|retry
    GET  /v1/workflows/{id}/wait?timeout_s=     long poll until finished
    GET  /v1/workflows/{id}/tasks?state=
    GET  /v1/workflows/{id}/tasks/{task_id}
    GET  /v1/workflows/{id}/tasks/{task_id}/logs?offset&limit|tail   one bounded page
    GET  /v1/events?since&workflow_id           server-sent events (Last-Event-ID resumes)
    GET  /health
"""

from __future__ import annotations

import asyncio
import json
import logging
import secrets
from collections.abc import AsyncIterator, Awaitable, Callable
from enum import StrEnum
from typing import Any, TypeVar

from pydantic import BaseModel, TypeAdapter, ValidationError
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from daemons.common.sse import SseMessage, sse_frames
from daemons.orchestrator.engine.service import Orchestrator
from daemons.orchestrator.model import TaskSpec, TaskState, WorkflowSpec, WorkflowState
from daemons.orchestrator.views import LOG_PAGE_DEFAULT, Event
from registry.envelope import Envelope
from registry.errors import (
    Internal,
    InvalidInput,
    MethodNotAllowed,
    NotFound,
    PayloadTooLarge,
    PlatformError,
    Unauthenticated,
)
from registry.trace import trace_id_from_headers

log = logging.getLogger("prvng.orchestrator.api")

MAX_BODY_BYTES = 64 << 20
"""A spec of 100,000 tasks fits; anything bigger is a mistake."""
MAX_WAIT_S = 300.0
_CHUNK = 500
_TASKS = TypeAdapter(list[TaskSpec])
_MAX_ERRORS = 20

Handler = Callable[[Request], Awaitable[Any]]
E = TypeVar("E", bound=StrEnum)


def create_app(orchestrator: Orchestrator, token: str) -> Starlette:
    """The ASGI app serving `orchestrator`, accepting only bearer `token`."""
    api = _Api(orchestrator, token)
    routes = [
        Route("/health", api.health, methods=["GET"]),
        Route("/v1/workflows", api.wrap(api.submit), methods=["POST"]),
        Route("/v1/workflow-checks", api.wrap(api.check), methods=["POST"]),
        Route("/v1/workflows", api.wrap(api.list), methods=["GET"]),
        Route("/v1/workflows/{id}", api.wrap(api.get), methods=["GET"]),
        Route("/v1/workflows/{id}/cancel", api.wrap(api.cancel), methods=["POST"]),
        Route("/v1/workflows/{id}/rollback", api.wrap(api.rollback), methods=["POST"]),
        Route("/v1/workflows/{id}/retry", api.wrap(api.retry), methods=["POST"]),
        Route("/v1/workflows/{id}/wait", api.wrap(api.wait), methods=["GET"]),
        Route("/v1/workflows/{id}/tasks", api.wrap(api.tasks), methods=["GET"]),
        Route("/v1/workflows/{id}/tasks/{task_id}", api.wrap(api.task), methods=["GET"]),
        Route("/v1/workflows/{id}/tasks/{task_id}/logs", api.wrap(api.logs), methods=["GET"]),
        Route("/v1/events", api.events, methods=["GET"]),
    ]
    return Starlette(
        routes=routes,
        exception_handlers={HTTPException: _http_exception},
    )


class _Api:
    def __init__(self, orchestrator: Orchestrator, token: str) -> None:
        if not token:
            raise ValueError("the orchestrator API needs a non-empty token")
        self.orch = orchestrator
        self._token = token.encode()

    # ---- plumbing ------------------------------------------------------------------------

    def wrap(self, handler: Handler) -> Callable[[Request], Awaitable[Response]]:
        """Authenticate, run, and answer an envelope (errors included)."""

        async def endpoint(request: Request) -> Response:
            trace_id = trace_id_from_headers(request.headers)
            try:
                self._authenticate(request)
                data = await handler(request)
                envelope = Envelope.success(_jsonable(data), trace_id)
            except PlatformError as err:
                envelope = Envelope.failure(err, trace_id)
            except Exception:
                log.exception("orchestrator API %s %s failed", request.method, request.url.path)
                internal = Internal(
                    f"unexpected orchestrator error; see its log (trace {trace_id})"
                )
                envelope = Envelope.failure(internal, trace_id)
            return _envelope_response(envelope)

        return endpoint

    def _authenticate(self, request: Request) -> None:
        scheme, _, given = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not secrets.compare_digest(given.encode(), self._token):
            raise Unauthenticated(
                "missing or wrong bearer token for the orchestrator API; send "
                "`Authorization: Bearer <token>` (PRVNG_HOME/credentials/orchestrator-token)"
            )

    # ---- routes --------------------------------------------------------------------------

    async def health(self, request: Request) -> Response:
        health = self.orch.health()
        envelope = Envelope.success(health, trace_id_from_headers(request.headers))
        return JSONResponse(envelope.to_dict(), status_code=200 if health["ready"] else 503)

    async def submit(self, request: Request) -> Any:
        body = await _body(request)
        spec = await asyncio.to_thread(_parse_spec, body)  # megabytes take a while to parse
        return await self.orch.submit(spec, request.query_params.get("id"))

    async def check(self, request: Request) -> Any:
        spec = await asyncio.to_thread(_parse_spec, await _body(request))
        await self.orch.check(spec)
        return {"valid": True}

    async def list(self, request: Request) -> Any:
        q = request.query_params
        return await self.orch.list(
            state=_enum(WorkflowState, q.get("state"), "state"),
            labels=_labels(q.getlist("label")),
            name=q.get("name"),
            limit=_int(q.get("limit"), "limit", 50),
            cursor=q.get("cursor"),
        )

    async def get(self, request: Request) -> Any:
        return await self.orch.get(request.path_params["id"])

    async def cancel(self, request: Request) -> Any:
        return await self.orch.cancel(request.path_params["id"])

    async def rollback(self, request: Request) -> Any:
        return await self.orch.rollback(request.path_params["id"])

    async def retry(self, request: Request) -> Any:
        return await self.orch.retry(request.path_params["id"])

    async def wait(self, request: Request) -> Any:
        raw = request.query_params.get("timeout_s")
        try:
            timeout_s = 30.0 if raw is None else float(raw)
        except ValueError:
            raise InvalidInput(f"timeout_s must be a number of seconds, got {raw!r}") from None
        if not 0 <= timeout_s <= MAX_WAIT_S:
            raise InvalidInput(f"timeout_s must be between 0 and {MAX_WAIT_S:g}, got {raw}")
        return await self.orch.wait(request.path_params["id"], timeout_s)

    async def tasks(self, request: Request) -> Any:
        state = _enum(TaskState, request.query_params.get("state"), "state")
        return await self.orch.tasks(request.path_params["id"], state)

    async def task(self, request: Request) -> Any:
        return await self.orch.task(request.path_params["id"], request.path_params["task_id"])

    async def logs(self, request: Request) -> Any:
        q = request.query_params
        tail = None if q.get("tail") is None else _int(q.get("tail"), "tail", 0)
        offset = None if q.get("offset") is None else _int(q.get("offset"), "offset", 0)
        limit = _int(q.get("limit"), "limit", LOG_PAGE_DEFAULT)
        p = request.path_params
        return await self.orch.logs(p["id"], p["task_id"], tail, offset, limit)

    async def events(self, request: Request) -> Response:
        trace_id = trace_id_from_headers(request.headers)
        try:
            self._authenticate(request)
            raw = request.query_params.get("since") or request.headers.get("last-event-id")
            since = None if raw is None else _int(raw, "since", 0)
            # An unknown workflow id is no error: a caller may subscribe before it submits.
            workflow_id = request.query_params.get("workflow_id")
        except PlatformError as err:
            return _envelope_response(Envelope.failure(err, trace_id))
        return StreamingResponse(
            sse_frames(_messages(self.orch.events(since, workflow_id))),
            media_type="text/event-stream",
            headers={"Cache-Control": "no-cache", "X-Trace-Id": trace_id},
        )


async def _messages(events: AsyncIterator[Event]) -> AsyncIterator[SseMessage]:
    async for event in events:
        yield SseMessage(str(event.seq), event.kind, event.model_dump_json())


def _envelope_response(envelope: Envelope) -> JSONResponse:
    return JSONResponse(
        envelope.to_dict(),
        status_code=envelope.http_status,
        headers={"X-Trace-Id": envelope.trace_id},
    )


async def _http_exception(request: Request, exc: Exception) -> Response:
    """Unknown paths and methods answer envelopes too."""
    trace_id = trace_id_from_headers(request.headers)
    err: PlatformError
    if not isinstance(exc, HTTPException):
        err = Internal(f"unexpected orchestrator error; see its log (trace {trace_id})")
    elif exc.status_code == 405:
        err = MethodNotAllowed(f"{request.method} is not allowed on {request.url.path}")
    elif exc.status_code == 404:
        err = NotFound(f"no orchestrator API route {request.url.path}; see GET /health")
    else:
        err = Internal(f"HTTP {exc.status_code}: {exc.detail}")
    return _envelope_response(Envelope.failure(err, trace_id))


async def _body(request: Request) -> bytes:
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > MAX_BODY_BYTES:
        raise PayloadTooLarge(f"request body over {MAX_BODY_BYTES} bytes")
    chunks = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_BODY_BYTES:
            raise PayloadTooLarge(f"request body over {MAX_BODY_BYTES} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


def _parse_spec(body: bytes) -> WorkflowSpec:
    """The spec in `body`, validated `_CHUNK` tasks per call: pydantic holds the GIL for a
    whole call, so one call on a big spec would stall the event loop however threaded."""
    try:
        data = json.loads(body)
    except ValueError as exc:
        raise InvalidInput(f"request body is not valid JSON: {exc}") from None
    tasks = data.get("tasks") if isinstance(data, dict) else None
    try:
        if isinstance(tasks, list) and len(tasks) > _CHUNK:
            checked: list[TaskSpec] = []
            errors: list[dict[str, str]] = []
            count = 0
            for start in range(0, len(tasks), _CHUNK):
                try:
                    checked += _TASKS.validate_python(tasks[start : start + _CHUNK])
                except ValidationError as exc:
                    count += exc.error_count()
                    errors += _errors(exc, ("tasks",), start)[: _MAX_ERRORS - len(errors)]
            if errors:
                raise _invalid(errors, count)
            data = {**data, "tasks": checked}
        return WorkflowSpec.model_validate(data)
    except ValidationError as exc:
        raise _invalid(_errors(exc)[:_MAX_ERRORS], exc.error_count()) from None


def _errors(
    exc: ValidationError, prefix: tuple[str, ...] = (), offset: int = 0
) -> list[dict[str, str]]:
    """Each error with its location in the spec (`offset`: the first task of a chunk)."""
    errors = []
    for e in exc.errors():
        loc = list(e["loc"])
        if prefix and loc and isinstance(loc[0], int):
            loc[0] += offset
        errors.append({"loc": ".".join(str(p) for p in (*prefix, *loc)), "msg": e["msg"]})
    return errors


def _invalid(errors: list[dict[str, str]], count: int) -> InvalidInput:
    """The first `_MAX_ERRORS` errors, and how many there were."""
    first = errors[0]
    return InvalidInput(
        f"invalid workflow spec: {first['loc'] or 'body'}: {first['msg']}",
        details={"errors": errors, "error_count": count},
    )


def _int(raw: str | None, name: str, default: int) -> int:
    if raw is None:
        return default
    try:
        return int(raw)
    except ValueError:
        raise InvalidInput(f"{name} must be an integer, got {raw!r}") from None


def _labels(raw: list[str]) -> dict[str, str]:
    """Repeated `label=key=value` query parameters: all must match."""
    labels = {}
    for item in raw:
        key, has_value, value = item.partition("=")
        if not key or not has_value:
            raise InvalidInput(f"label filter {item!r} must be `key=value`")
        labels[key] = value
    return labels


def _enum(enum: type[E], raw: str | None, name: str) -> E | None:
    if raw is None:
        return None
    try:
        return enum(raw)
    except ValueError:
        allowed = ", ".join(e.value for e in enum)
        raise InvalidInput(f"{name} must be one of {allowed}, got {raw!r}") from None


def _jsonable(data: Any) -> Any:
    if isinstance(data, BaseModel):
        return data.model_dump(mode="json")
    if isinstance(data, list):
        return [_jsonable(item) for item in data]
    return data
