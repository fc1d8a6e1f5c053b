"""Serves the dashboard's files from memory, each with the security headers a browser
needs to keep the page to itself: no inline script or style, no framing, no sniffing."""

from __future__ import annotations

from pathlib import Path

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

STATIC = Path(__file__).with_name("static")
PREFIX = "/ui"

_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".svg": "image/svg+xml",
}

CSP = "; ".join(
    (
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' data:",
        "connect-src 'self'",
        "font-src 'self'",
        "object-src 'none'",
        "base-uri 'none'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    )
)
SECURITY_HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Cache-Control": "no-cache",
}


def _load() -> dict[str, tuple[bytes, str]]:
    """Every shipped file by its URL path; `/ui/` is the index."""
    files = {
        f"{PREFIX}/{path.name}": (path.read_bytes(), _TYPES[path.suffix])
        for path in sorted(STATIC.iterdir())
        if path.suffix in _TYPES
    }
    files[f"{PREFIX}/"] = files[f"{PREFIX}/index.html"]
    return files


_FILES = _load()
UI_PATHS = frozenset({PREFIX, *_FILES})
"""The exact paths served without a bearer: a browser loads them before signing in."""


async def _serve(request: Request) -> Response:
    path = request.url.path
    if path == PREFIX:
        return RedirectResponse(f"{PREFIX}/", headers=SECURITY_HEADERS)
    if path in _FILES:
        body, media_type = _FILES[path]
        return Response(body, media_type=media_type, headers=SECURITY_HEADERS)
    return Response("not found\n", 404, media_type="text/plain", headers=SECURITY_HEADERS)


ui_route = Route(PREFIX + "{path:path}", _serve, methods=["GET", "HEAD"])
"""`/ui`, `/ui/` and each file; `servers.http.app` registers it."""
