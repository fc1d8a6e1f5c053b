"""The one canonical JSON form digests are taken of (call args, plans, ops, audit events).

Sorted keys, no spaces, UTF-8 (RFC 8785 for the values we carry: strings, integers,
booleans, null, lists and objects), so a digest is the same on every tier and daemon.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any


def canonical_json(value: Any) -> bytes:
    """`value` as canonical JSON bytes (values JSON has no form for are written as text)."""
    text = json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)
    return text.encode()


def sha256_digest(value: Any) -> str:
    """`sha256:<hex>` of `canonical_json(value)`."""
    return "sha256:" + hashlib.sha256(canonical_json(value)).hexdigest()


__all__ = ["canonical_json", "sha256_digest"]
