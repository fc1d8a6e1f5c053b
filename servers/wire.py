"""Wire helpers the HTTP and MCP tiers share: JSON bytes, bearer credentials, the tier."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pydantic_core

from registry.context import TIER_HEADER, CallTier

_MCP_PATHS = ("/mcp", "/mcp/")
_TIER_KEY = TIER_HEADER.lower()


def json_bytes(value: Any) -> bytes:
    """Compact JSON (Rust serializer: about 4x faster than `json.dumps` on envelopes)."""
    return pydantic_core.to_json(value)


def bearer_token(authorization: str | None) -> str | None:
    """The credential of an `Authorization: Bearer <token>` header, else None."""
    if not authorization:
        return None
    scheme, _, token = authorization.strip().partition(" ")
    if scheme.lower() != "bearer":
        return None
    return token.strip() or None


def request_tier(path: str, headers: Mapping[str, str]) -> CallTier:
    """The tier of an HTTP request: `/mcp` is MCP over HTTP, the rest REST. A client's
    `X-Prvng-Tier` header may only say which of the family it is (the remote CLI, the
    stdio MCP relay): it labels the audit record and grants nothing."""
    said = headers.get(_TIER_KEY)
    if path in _MCP_PATHS:
        return CallTier.MCP_STDIO if said == CallTier.MCP_STDIO else CallTier.MCP_HTTP
    return CallTier.CLI_REMOTE if said == CallTier.CLI_REMOTE else CallTier.HTTP
