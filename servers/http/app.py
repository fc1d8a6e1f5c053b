"""The HTTP tier: `/v1/tools/{name}`, REST aliases (compatibility ones too), SSE streams,
`/openapi.json`, `/health`, `/mcp`.

A route only turns a request into `(tool, args, principal, trace id)`, calls
`Registry.invoke` and answers the envelope with its status and `X-Trace-Id`. Every error,
including routing and parsing ones, is an envelope. The bearer check is one pure ASGI
layer and endpoints are plain functions, so the tier adds little to the handler's cost.
"""

from __future__ import annotations

import asyncio
import logging
import math
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from contextlib import asynccontextmanager
from typing import Any

from starlette.applications import Starlette
from starlette.datastructures import Headers
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route
from starlette.types import ASGIApp, Receive, Scope, Send

from daemons.common.health import HealthBoard
from daemons.common.settings import Settings
from registry import Envelope, Principal, Registry, ToolSpec
from registry.errors import (
    ErrorCode,
    Internal,
    InvalidInput,
    MethodNotAllowed,
    NotFound,
    PlatformError,
    Unauthenticated,
)
from registry.ratelimit import FAILED_AUTH, TokenBucketLimiter
from registry.refusals import EdgeRefusals, source_of
from registry.schema import input_schema
from registry.toolsets import parse_toolsets
from registry.trace import trace_id_from_headers
from servers import jsontext
from servers.assembly import rate_limits
from servers.http.input import path_args, query_args, read_body, read_json_object
from servers.http.mcp_direct import DirectCalls
from servers.http.mcp_gate import PRINCIPAL_SCOPE_KEY, TOOLSETS_PARAM, McpGate
from servers.http.metrics import Metrics
from servers.http.openapi import openapi_document
from servers.http.sse import EVENTS_TOOL, resume_from, stream_response, wants_stream
from servers.http.ui import UI_PATHS, ui_route
from servers.runfile import MAX_CHALLENGE, challenge_proof
from servers.stdio import MESSAGE_DEPTH, parse_error
from servers.wire import bearer_token, json_bytes, request_tier

log = logging.getLogger("prvng.http")

OPEN_PATHS = frozenset({"/health", "/openapi.json", "/.well-known/jwks.json"}) | UI_PATHS

_PRINCIPAL = PRINCIPAL_SCOPE_KEY
_JSON = "application/json"
_BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})


def error_response(
    err: PlatformError, trace_id: str, headers: Mapping[str, str] | None = None
) -> Response:
    return envelope_response(Envelope.failure(err, trace_id), headers)


def envelope_response(env: Envelope, headers: Mapping[str, str] | None = None) -> Response:
    response = Response(json_bytes(env.to_dict()), env.http_status, media_type=_JSON)
    response.headers["X-Trace-Id"] = env.trace_id
    if env.http_status == 429:
        retry_after = (env.error or {}).get("details", {}).get("retry_after_s", 1)
        response.headers["Retry-After"] = str(max(1, math.ceil(retry_after)))
    if headers:
        response.headers.update(headers)
    return response


class BearerAuth:
    """Authenticates every request outside `OPEN_PATHS` once; endpoints get the principal.

    A refusal is audited compactly and spends the source address's failure budget; a
    source whose budget is spent is answered `rate_limited` before its key is checked."""

    def __init__(self, app: ASGIApp, registry: Registry, refusals: EdgeRefusals) -> None:
        self.app = app
        self.registry = registry
        self.refusals = refusals

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"] not in OPEN_PATHS:
            headers = Headers(scope=scope)
            source = source_of((scope.get("client") or ("unknown",))[0])
            err: PlatformError | None = self.refusals.blocked(source)
            if err is None:
                try:
                    credential = bearer_token(headers.get("authorization"))
                    scope[_PRINCIPAL] = await self.registry.authenticate(credential)
                except Unauthenticated as exc:
                    await self.refusals.failed(source)
                    err = exc
            if err is not None:
                trace_id = trace_id_from_headers(headers)
                target = f"{scope['method']} {scope['path']}"
                tier = request_tier(scope["path"], headers)
                await self.refusals.record(source, target, err, trace_id, tier)
                extra = {} if err.code is ErrorCode.RATE_LIMITED else {"WWW-Authenticate": "Bearer"}
                await error_response(err, trace_id, extra)(scope, receive, send)
                return
        await self.app(scope, receive, send)


def _internal(request: Request, trace_id: str, exc: BaseException) -> Response:
    """A 500 envelope that names the trace id; the traceback goes to the log only."""
    log.error("%s %s failed (trace %s)", request.method, request.url.path, trace_id, exc_info=exc)
    err = Internal(f"the request failed unexpectedly; the server log has trace {trace_id}")
    return error_response(err, trace_id)


def _principal(request: Request) -> Principal:
    principal: Principal = request.scope[_PRINCIPAL]
    return principal


Handler = Callable[[Request, str], Awaitable[Response]]


def _endpoint(handler: Handler) -> Callable[[Request], Awaitable[Response]]:
    """Give a handler its trace id; turn anything it raises into an envelope."""

    async def endpoint(request: Request) -> Response:
        trace_id = trace_id_from_headers(request.headers)
        try:
            return await handler(request, trace_id)
        except PlatformError as exc:
            return error_response(exc, trace_id)
        except Exception as exc:
            return _internal(request, trace_id, exc)

    return endpoint


class _Tier:
    """The routes' shared state: the registry, the health board and the body limit."""

    def __init__(
        self,
        registry: Registry,
        settings: Settings,
        health: HealthBoard,
        refusals: EdgeRefusals,
        run_secret: str | None = None,
    ) -> None:
        self.registry = registry
        self.run_secret = run_secret
        self.max_body = settings.max_body_bytes
        self.keys_dir = settings.keys_dir
        self.health_board = health
        self.refusals = refusals
        self._metrics = Metrics(registry)
        self.closing = asyncio.Event()
        """Set when the server stops, so long-lived streams end instead of holding it up."""
        self._openapi: bytes | None = None

    async def events(self, request: Request, trace_id: str) -> Response:
        """`GET /events`: the compatibility path of the `workflow.events` stream."""
        spec = self.registry.get(EVENTS_TOOL)
        args = query_args(request.query_params.multi_items(), input_schema(spec.input_model))
        return await self.stream(request, trace_id, spec, args)

    async def stream(
        self, request: Request, trace_id: str, spec: ToolSpec, args: dict[str, Any]
    ) -> Response:
        if spec.stream is None:
            raise InvalidInput(
                f"{spec.name} is not a stream; POST /v1/tools/{spec.name} calls it",
                details={"tool": spec.name},
            )
        resume_from(spec, request.headers.get("last-event-id"), args)
        principal = _principal(request)
        tier = request_tier(request.url.path, request.headers)
        return await stream_response(
            self.registry, spec, args, principal, trace_id, self.closing, tier
        )

    async def health(self, request: Request) -> Response:
        """Open to all, so it says only ok/degraded; a valid bearer also sees each component."""
        challenge = request.query_params.get("challenge")
        if challenge is not None and self.run_secret is not None:
            # A client proving who listens here before it sends a credential (servers.runfile).
            proof = challenge_proof(self.run_secret, challenge[:MAX_CHALLENGE])
            return Response(json_bytes({"proof": proof}), media_type=_JSON)
        states = await self.health_board.check()
        ready = all(state.ready for state in states.values())
        body: dict[str, Any] = {"status": "ok" if ready else "degraded"}
        if await self._authenticated(request):
            body["components"] = {
                name: {"ready": state.ready, "detail": state.detail}
                for name, state in states.items()
            }
        return Response(json_bytes(body), 200 if ready else 503, media_type=_JSON)

    async def _authenticated(self, request: Request) -> bool:
        """Whether the bearer is valid; a wrong one spends its source's failure budget, as
        everywhere (else `/health` would be a free oracle for guessing keys)."""
        credential = bearer_token(request.headers.get("authorization"))
        source = source_of(request.client.host if request.client else "unknown")
        if not credential or self.refusals.blocked(source):
            return False
        try:
            await self.registry.authenticate(credential)
        except Unauthenticated:
            await self.refusals.failed(source)
            return False
        return True

    async def metrics(self, request: Request, trace_id: str) -> Response:
        return await self._metrics.scrape(_principal(request), trace_id)

    async def jwks(self, request: Request) -> Response:
        """The keeper's verification keys (public parts only), read at each request so a
        rotated key is served at once: any JOSE library can check an approval token."""
        from daemons.ops.keyring import KeyRing

        jwks = await asyncio.to_thread(lambda: KeyRing(self.keys_dir).load().jwks())
        return Response(json_bytes(jwks), media_type="application/jwk-set+json")

    async def openapi(self, request: Request) -> Response:
        if self._openapi is None:
            self._openapi = json_bytes(openapi_document(self.registry))
        return Response(self._openapi, media_type=_JSON)

    async def invoke(
        self, request: Request, trace_id: str, name: str, args: dict[str, Any]
    ) -> Response:
        env = await self.registry.invoke(
            name,
            args,
            principal=_principal(request),
            trace_id=trace_id,
            tier=request_tier(request.url.path, request.headers),
        )
        return envelope_response(env)

    async def open_stream(self, request: Request, trace_id: str) -> Response:
        """`GET /v1/streams/{name}`: any streaming tool as SSE, its input from the query."""
        spec = self.registry.get(request.path_params["name"])
        args = query_args(request.query_params.multi_items(), input_schema(spec.input_model))
        return await self.stream(request, trace_id, spec, args)

    async def call_tool(self, request: Request, trace_id: str) -> Response:
        spec = self.registry.get(request.path_params["name"])
        args = await read_json_object(request, self.max_body)
        return await self.invoke(request, trace_id, spec.name, args)

    def alias_route(self, path: str, specs: dict[str, ToolSpec]) -> Route:
        """One route per alias path; the method picks the tool."""

        async def handle(request: Request, trace_id: str) -> Response:
            spec = specs["GET" if request.method == "HEAD" else request.method]
            schema = input_schema(spec.input_model)
            if request.method in _BODY_METHODS:
                args = await read_json_object(request, self.max_body)
            else:
                args = query_args(request.query_params.multi_items(), schema)
            for key, value in path_args(request.path_params, schema).items():
                if key in args and args[key] != value:
                    raise InvalidInput(
                        f"{key!r} is {value!r} in the path but {args[key]!r} in the request; "
                        "leave it out of the body or make them agree",
                        details={"field": key},
                    )
                args[key] = value
            if wants_stream(spec, request.headers.get("accept")):
                return await self.stream(request, trace_id, spec, args)
            return await self.invoke(request, trace_id, spec.name, args)

        return Route(path, _endpoint(handle), methods=list(specs), name=f"alias {path}")


def _alias_paths(registry: Registry) -> dict[str, dict[str, ToolSpec]]:
    paths: dict[str, dict[str, ToolSpec]] = {}
    for spec in registry.list():
        for route in spec.routes:
            by_method = paths.setdefault(route.path, {})
            if route.method in by_method:
                raise ValueError(
                    f"{spec.name} and {by_method[route.method].name} both claim "
                    f"{route.method} {route.path}"
                )
            by_method[route.method] = spec
    return paths


def _static_first(path: str) -> list[int]:
    """Sort key: at each segment a literal beats a `{param}` (`/x/new` before `/x/{id}`)."""
    return [1 if segment.startswith("{") else 0 for segment in path.split("/")]


class _McpEndpoint:
    """Serves `/mcp` and `/mcp/` with the MCP app (whose route is `/mcp`).

    A message body is read here first, as REST reads one: past PRVNG_MAX_BODY_BYTES it is
    the platform's 413 envelope; text that is not strict JSON is a JSON-RPC parse error
    (400). The SDK then gets the body as it came, except a `tools/call` that `direct`
    (stateless JSON mode) answers itself. Unknown `?toolsets=` names are 422; a GET on a
    stateless server, which has no stream to open, is 405."""

    def __init__(
        self,
        app: ASGIApp,
        max_body: int,
        registry: Registry,
        *,
        stateless: bool = False,
        direct: DirectCalls | None = None,
    ) -> None:
        self.app = app
        self.max_body = max_body
        self.registry = registry
        self.stateless = stateless
        self.direct = direct

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        scope = {**scope, "path": "/mcp"}
        request = Request(scope, receive)
        try:
            if scope["query_string"]:
                toolsets = request.query_params.get(TOOLSETS_PARAM)
                if toolsets is not None:
                    parse_toolsets(toolsets, (spec.name for spec in self.registry.list()))
            if scope["method"] == "GET" and self.stateless:
                raise MethodNotAllowed(
                    "GET /mcp opens no stream on a stateless server (PRVNG_MCP_STATELESS); "
                    "POST each message",
                    details={"allow": ["POST"]},
                )
            if scope["method"] != "POST":
                await self.app(scope, receive, send)
                return
            body = await read_body(request, self.max_body)
            message = jsontext.loads(body, "the message", max_depth=MESSAGE_DEPTH) if body else None
        except PlatformError as exc:
            allow = {"Allow": "POST"} if isinstance(exc, MethodNotAllowed) else None
            trace_id = trace_id_from_headers(request.headers)
            await error_response(exc, trace_id, allow)(scope, receive, send)
            return
        except jsontext.JsonRejected as exc:
            await Response(json_bytes(parse_error(exc)), 400, media_type=_JSON)(
                scope, receive, send
            )
            return
        if self.direct is not None and self.direct.takes(message, request.headers):
            await self.direct.answer(message, scope, receive, send)
            return
        await self.app(scope, _replay(body, receive), send)


def _replay(body: bytes, receive: Receive) -> Receive:
    """A `receive` that hands the app the body already read, then the client's own events
    (its disconnect)."""
    sent = False

    async def replay() -> Any:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replay


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    trace_id = trace_id_from_headers(request.headers)
    route = f"{request.method} {request.url.path}"
    if exc.status_code == 405:
        allowed = (exc.headers or {}).get("Allow", "")
        err: PlatformError = MethodNotAllowed(
            f"{route} is not allowed; this path accepts {allowed}",
            details={"allow": sorted(m.strip() for m in allowed.split(",") if m.strip())},
        )
    elif exc.status_code == 404:
        err = NotFound(f"no route {route}; GET /openapi.json lists every route")
    else:
        err = InvalidInput(f"{route}: {exc.detail}")
    return error_response(err, trace_id, exc.headers)


async def _server_error(request: Request, exc: Exception) -> Response:
    return _internal(request, trace_id_from_headers(request.headers), exc)


def create_app(
    registry: Registry,
    settings: Settings,
    *,
    health: HealthBoard | None = None,
    mount_mcp: bool = True,
    run_secret: str | None = None,
) -> Starlette:
    """The HTTP daemon's app. REST aliases are read from the registry now, once.

    `/health` asks `health` (default: the registry's own board); `run_secret` is the run
    file's secret, with which `/health?challenge=` proves the app is the platform that file
    names."""
    if health is None:
        resources = registry.resources
        health = resources.peek(HealthBoard) if resources.is_open(HealthBoard) else HealthBoard()
    refusals = EdgeRefusals(registry.audit_sink, budget=rate_limits(settings)[FAILED_AUTH])
    tier = _Tier(registry, settings, health, refusals, run_secret)
    routes: list[BaseRoute] = [
        Route("/health", tier.health, methods=["GET"]),
        Route("/openapi.json", tier.openapi, methods=["GET"]),
        Route("/.well-known/jwks.json", tier.jwks, methods=["GET"]),
        Route("/v1/tools/{name}", _endpoint(tier.call_tool), methods=["POST"]),
        Route("/v1/streams/{name}", _endpoint(tier.open_stream), methods=["GET"]),
        Route("/events", _endpoint(tier.events), methods=["GET"]),
        Route("/metrics", _endpoint(tier.metrics), methods=["GET"]),
        ui_route,
    ]
    aliases = _alias_paths(registry)
    routes += [tier.alias_route(path, aliases[path]) for path in sorted(aliases, key=_static_first)]

    mcp_app: Starlette | None = None
    if mount_mcp:
        from servers.mcp import build_mcp

        # The gate checks Host/Origin in the platform's error shape; FastMCP's guard is off.
        stateless = settings.mcp_stateless
        json_response = (
            stateless if settings.mcp_json_response is None else settings.mcp_json_response
        )
        mcp_app = build_mcp(registry).http_app(
            path="/mcp",
            host_origin_protection=False,
            stateless_http=stateless,
            json_response=json_response,
        )
        # Stateless JSON: a tools/call needs no SDK transport (servers/http/mcp_direct.py).
        direct = None
        if stateless and json_response:
            direct = DirectCalls(registry, (spec.name for spec in registry.list()))
        endpoint = _McpEndpoint(
            mcp_app, tier.max_body, registry, stateless=stateless, direct=direct
        )
        gate = McpGate(endpoint, settings)
        # First: the router tries routes in order, and an MCP session is the busiest caller.
        routes[:0] = [Route("/mcp", gate), Route("/mcp/", gate)]

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        try:
            if mcp_app is None:
                yield
            else:
                async with mcp_app.router.lifespan_context(mcp_app):
                    yield
        finally:
            await refusals.flush()  # the refusals counted but not yet written
            if registry.resources.is_open(TokenBucketLimiter):
                await registry.resources.peek(TokenBucketLimiter).flush()

    app = Starlette(
        routes=routes,
        exception_handlers={HTTPException: _http_error, Exception: _server_error},
        lifespan=lifespan,
    )
    app.state.closing = tier.closing
    app.add_middleware(BearerAuth, registry=registry, refusals=refusals)
    return app


def begin_shutdown(app: Starlette) -> None:
    """End long-lived streams (`/events`) so the server can stop without waiting them out."""
    app.state.closing.set()
