"""Trace ids: taken from `traceparent` or `X-Trace-Id` at the edge, else created.

A trace id is 32 lowercase hex digits (the W3C trace-id), so it can be forwarded as a
`traceparent` to NATS headers and other services unchanged.
"""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Mapping

_TRACEPARENT = re.compile(r"[0-9a-f]{2}-([0-9a-f]{32})-[0-9a-f]{16}-[0-9a-f]{2}")
_TRACE_ID = re.compile(r"[0-9A-Za-z_\-]{8,64}")
_INVALID = "0" * 32
_OWS = " \t"  # HTTP's optional white space; a newline is never part of a header value


def new_trace_id() -> str:
    return os.urandom(16).hex()


def trace_id_from_headers(headers: Mapping[str, str]) -> str:
    """The caller's trace id when it sent a well-formed one, else a fresh id."""
    parent = headers.get("traceparent")
    if parent:
        match = _TRACEPARENT.fullmatch(parent.strip(_OWS).lower())
        if match and match.group(1) != _INVALID:
            return match.group(1)
    given = headers.get("x-trace-id")
    given = (given or "").strip(_OWS)
    if _TRACE_ID.fullmatch(given):
        return given
    return new_trace_id()


def traceparent(trace_id: str) -> str:
    """A W3C `traceparent` carrying this trace id (other ids map to a stable hex digest)."""
    hex_id = (
        trace_id
        if re.fullmatch(r"[0-9a-f]{32}", trace_id)
        else hashlib.sha256(trace_id.encode()).hexdigest()[:32]
    )
    return f"00-{hex_id}-{os.urandom(8).hex()}-01"
