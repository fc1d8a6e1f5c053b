"""Wire helpers the HTTP and MCP tiers share: JSON bytes and bearer credentials."""

from __future__ import annotations

from typing import Any

import pydantic_core


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
