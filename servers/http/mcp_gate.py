"""The gate in front of `/mcp`: Host/Origin checks and sessions bound to their principal.

A browser page on another site can reach a daemon on 127.0.0.1 by rebinding its own DNS
name to it (DNS rebinding); its requests then carry that name as `Host` and its own
`Origin`. So `Host` must name the listen address, a loopback name or one of
`PRVNG_ALLOWED_HOSTS`, and an `Origin`, when sent, must be the daemon's own or one of
`PRVNG_ALLOWED_ORIGINS` (403 otherwise). An `Mcp-Session-Id` is usable (and deletable)
only by the principal that opened the session; to anyone else it does not exist (404),
and the session lives on. A stateless `/mcp` (`PRVNG_MCP_STATELESS`) opens no session, so
only the Host/Origin checks apply: each request is its bearer's alone.
"""

from __future__ import annotations

import ipaddress
import logging
from collections import OrderedDict
from fnmatch import fnmatchcase
from functools import lru_cache
from urllib.parse import urlsplit

from starlette.datastructures import Headers
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from daemons.common.settings import Settings
from registry import Envelope, Principal
from registry.errors import Forbidden, NotFound, PlatformError
from registry.trace import trace_id_from_headers
from servers.wire import json_bytes

log = logging.getLogger("prvng.http.mcp")

PRINCIPAL_SCOPE_KEY = "prvng.principal"
"""Where the HTTP tier's authentication leaves the request's principal in the ASGI scope."""
TOOLSETS_PARAM = "toolsets"
"""The `/mcp` query parameter naming the toolsets a client loads (`?toolsets=servers,tasks`)."""
LOOPBACK_NAMES = ("localhost", "127.0.0.1", "::1")
MAX_SESSIONS = 10_000
"""Owners remembered; the oldest is forgotten first (its session then answers 404)."""


def _host_name(netloc: str) -> str:
    """`netloc`'s host, lowercased, without port or IPv6 brackets."""
    netloc = netloc.strip().lower()
    if netloc.startswith("["):
        return netloc[1 : netloc.find("]")] if "]" in netloc else netloc
    return netloc.rsplit(":", 1)[0] if netloc.count(":") == 1 else netloc


def _origin(value: str) -> str | None:
    """`scheme://host[:port]` as browsers send it, or None when it is not one."""
    try:
        parts = urlsplit(value.strip().lower())
        port = parts.port
    except ValueError:
        return None
    if parts.scheme not in ("http", "https") or not parts.hostname or parts.path.strip("/"):
        return None
    default = {"http": 80, "https": 443}[parts.scheme]
    host = f"[{parts.hostname}]" if ":" in parts.hostname else parts.hostname
    return f"{parts.scheme}://{host}:{port or default}"


@lru_cache(maxsize=64)
def _listen_name(listen: str) -> str:
    """The name a listen address answers to as `Host` ("" for none or a wildcard such as
    0.0.0.0); cached, as a server has one or two listen addresses."""
    try:
        if not listen or ipaddress.ip_address(listen).is_unspecified:
            return ""
    except ValueError:
        pass
    return _host_name(listen)


def _is_pattern(name: str) -> bool:
    return any(c in name for c in "*?[")


class McpGate:
    """ASGI wrapper of the MCP app (serving both `/mcp` and `/mcp/`)."""

    def __init__(self, app: ASGIApp, settings: Settings) -> None:
        self.app = app
        self._stateless = settings.mcp_stateless
        hosts = [*LOOPBACK_NAMES, *(_host_name(h) for h in settings.allowed_hosts)]
        # Names without wildcards are a set lookup; only patterns need fnmatch.
        self._exact_hosts = frozenset(h for h in hosts if not _is_pattern(h))
        self._host_patterns = tuple(h for h in hosts if _is_pattern(h))
        self._origins = tuple(o for o in map(_origin, settings.allowed_origins) if o)
        self._owners: OrderedDict[str, str] = OrderedDict()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        scope = {**scope, "path": "/mcp"}
        headers = Headers(scope=scope)
        principal: Principal = scope[PRINCIPAL_SCOPE_KEY]
        session: str | None = None
        try:
            self._check_host_and_origin(scope, headers)
            # Stateless: no session to open, steal or end; each request stands alone.
            if not self._stateless:
                session = headers.get("mcp-session-id")
                if session is not None and self._owners.get(session) != principal.id:
                    raise NotFound(
                        f"no MCP session {session!r} for this caller; start one with `initialize`",
                        details={"session": session},
                    )
        except PlatformError as exc:
            await _refusal(exc, headers)(scope, receive, send)
            return
        if not self._stateless and (session is None or scope["method"] == "DELETE"):
            send = self._tracking(send, scope, session, principal)
        await self.app(scope, receive, send)

    def _check_host_and_origin(self, scope: Scope, headers: Headers) -> None:
        host_header = headers.get("host", "")
        host = _host_name(host_header)
        listen = _listen_name((scope.get("server") or ("",))[0] or "")
        if not (
            host in self._exact_hosts
            or (listen and host == listen)
            or any(fnmatchcase(host, pattern) for pattern in self._host_patterns)
        ):
            raise Forbidden(
                f"Host {host_header!r} is not this daemon's address; add the name to "
                "PRVNG_ALLOWED_HOSTS if clients really reach it that way",
                details={"host": host_header},
            )
        sent = headers.get("origin")
        if sent is None:
            return  # not a browser: nothing cross-site to fear
        origin = _origin(sent)
        own = _origin(f"{scope.get('scheme', 'http')}://{host_header}")
        if origin is None or (origin != own and not self._origin_allowed(origin)):
            raise Forbidden(
                f"Origin {sent!r} may not use /mcp; add it to PRVNG_ALLOWED_ORIGINS to allow "
                "that web page",
                details={"origin": sent},
            )

    def _origin_allowed(self, origin: str) -> bool:
        return any(fnmatchcase(origin, pattern) for pattern in self._origins)

    def _tracking(self, send: Send, scope: Scope, session: str | None, who: Principal) -> Send:
        """`send`, noting the owner of a session the response opens, or forgetting one deleted."""

        async def tracked(message: Message) -> None:
            if message["type"] == "http.response.start" and message["status"] < 300:
                if session is None:
                    opened = Headers(raw=message.get("headers", [])).get("mcp-session-id")
                    if opened is not None:
                        self._remember(opened, who.id)
                elif scope["method"] == "DELETE":
                    self._owners.pop(session, None)
            await send(message)

        return tracked

    def _remember(self, session: str, owner: str) -> None:
        self._owners[session] = owner
        while len(self._owners) > MAX_SESSIONS:
            self._owners.popitem(last=False)


def _refusal(err: PlatformError, headers: Headers) -> Response:
    trace_id = trace_id_from_headers(headers)
    log.warning("/mcp refused (%s): %s", err.code.value, err.message)
    env = Envelope.failure(err, trace_id)
    response = Response(json_bytes(env.to_dict()), env.http_status, media_type="application/json")
    response.headers["X-Trace-Id"] = trace_id
    return response
