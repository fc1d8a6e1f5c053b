"""The CLI's HTTP client for a running platform: `POST /v1/tools/{name}` and `GET /health`.

Stdlib `http.client` on purpose: httpx costs ~180 ms of imports, more than a whole call.
Failures to reach the platform become an `unavailable` envelope, so every outcome is an
envelope the CLI renders the same way.
"""

from __future__ import annotations

import hmac
import http.client
import json
import os
from typing import Any
from urllib.parse import quote, urlsplit

from servers.runfile import RunInfo, challenge_proof

TIER_HEADERS = {"X-Prvng-Tier": "cli-remote"}
"""Names this client in the platform's audit (`registry.context.TIER_HEADER`; spelled out
here so a remote call need not import `registry`)."""
CALL_TIMEOUT_S = 300.0
PROBE_TIMEOUT_S = 2.0
CHALLENGE_TIMEOUT_S = 10.0


def failure_envelope(
    code: str, message: str, trace_id: str | None, details: dict[str, Any] | None = None
) -> dict[str, Any]:
    """A failure envelope made on the client side (same shape as the registry's)."""
    from registry.timestamps import utc_now_iso  # only on failure: `registry` costs imports

    timestamp = utc_now_iso()
    return {
        "ok": False,
        "error": {"code": code, "message": message, "details": details or {}},
        "trace_id": trace_id or os.urandom(16).hex(),
        "timestamp": timestamp,
    }


def _connection(url: str, timeout: float) -> tuple[http.client.HTTPConnection, str]:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"{url!r} is not an http(s) URL")
    cls = http.client.HTTPSConnection if parts.scheme == "https" else http.client.HTTPConnection
    return cls(parts.hostname, parts.port, timeout=timeout), parts.path.rstrip("/")


def _request(
    url: str, method: str, path: str, body: bytes | None, headers: dict[str, str], timeout: float
) -> tuple[int, bytes]:
    conn, base = _connection(url, timeout)
    try:
        conn.request(method, base + path, body=body, headers=headers)
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


def _unexpected(url: str, status: int, raw: bytes, trace_id: str | None) -> dict[str, Any]:
    code = "unavailable" if status in (502, 503, 504) else "internal"
    snippet = raw[:200].decode(errors="replace").strip()
    return failure_envelope(
        code,
        f"{url} answered HTTP {status} without an envelope; is it a provisioning platform?",
        trace_id,
        {"status": status, "body": snippet},
    )


def post_tool(
    url: str,
    name: str,
    args: dict[str, Any],
    *,
    api_key: str | None,
    trace_id: str | None,
    timeout: float = CALL_TIMEOUT_S,
) -> dict[str, Any]:
    """Call one tool on the platform at `url`; always returns an envelope."""
    headers = {"Content-Type": "application/json", "Accept": "application/json", **TIER_HEADERS}
    if api_key:
        headers["Authorization"] = f"Bearer {api_key}"
    if trace_id:
        headers["X-Trace-Id"] = trace_id
    body = json.dumps(args).encode()
    try:
        status, raw = _request(url, "POST", f"/v1/tools/{quote(name)}", body, headers, timeout)
    except (OSError, http.client.HTTPException, ValueError) as exc:
        return failure_envelope(
            "unavailable",
            f"cannot reach the platform at {url}: {str(exc) or type(exc).__name__}; "
            "is it running? (`prvng platform status`)",
            trace_id,
            {"url": url},
        )
    try:
        envelope = json.loads(raw)
    except ValueError:
        return _unexpected(url, status, raw, trace_id)
    if not isinstance(envelope, dict) or "ok" not in envelope:
        return _unexpected(url, status, raw, trace_id)
    return envelope


def health(url: str, api_key: str | None, timeout: float = 5.0) -> dict[str, Any]:
    """`GET {url}/health` as JSON (components only with a valid key), or what went wrong."""
    headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
    try:
        _, raw = _request(url, "GET", "/health", None, headers, timeout)
        answer = json.loads(raw)
    except (OSError, http.client.HTTPException, ValueError) as exc:
        return {"status": "unreachable", "error": str(exc) or type(exc).__name__}
    return answer if isinstance(answer, dict) else {"status": "unreachable", "error": "not JSON"}


def health_status(url: str, timeout: float = PROBE_TIMEOUT_S) -> int | None:
    """The HTTP status of `GET {url}/health`, or None when nothing answers."""
    try:
        status, _ = _request(url, "GET", "/health", None, {}, timeout)
    except (OSError, http.client.HTTPException, ValueError):
        return None
    return status


def proves_run(info: RunInfo, timeout: float = CHALLENGE_TIMEOUT_S) -> bool:
    """True when the listener at the run file's URL answers a fresh nonce with the run
    secret's HMAC: it is the platform that wrote the file, so a credential may go there."""
    nonce = os.urandom(32).hex()
    try:
        status, raw = _request(info.url, "GET", f"/health?challenge={nonce}", None, {}, timeout)
        answer = json.loads(raw)
    except (OSError, http.client.HTTPException, ValueError):
        return False
    proof = answer.get("proof") if isinstance(answer, dict) else None
    if status != 200 or not isinstance(proof, str):
        return False
    expected = challenge_proof(info.secret, nonce)
    return hmac.compare_digest(proof.encode(), expected.encode())
