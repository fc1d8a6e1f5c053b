"""JSON text from a wire, read strictly: what RFC 8259 and the published schemas mean.

`json.loads` is lax in ways a caller cannot see: a repeated key silently keeps the last
value, `NaN` and `Infinity` pass, bytes in UTF-16 or with lone surrogates decode, and deep
nesting ends in a `RecursionError`. Every tier that parses JSON itself (HTTP bodies, MCP
messages, the CLI's `--json`) reads it here, so each refuses the same text the same way.
Stdlib only: the CLI imports it on its fast path.
"""

from __future__ import annotations

import json
import re
from typing import Any

MAX_DEPTH = 64
"""Deepest nesting of arrays and objects accepted (the top-level value is depth 1); the
registry's pipeline refuses the same (`registry.pipeline.MAX_INPUT_DEPTH`)."""

_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")


class JsonRejected(ValueError):
    """Text that is not acceptable JSON; `details` says where."""

    def __init__(self, message: str, details: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.details: dict[str, Any] = details or {}


def _object_pairs(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    obj = dict(pairs)
    if len(obj) == len(pairs):
        return obj
    seen: set[str] = set()
    for key, _ in pairs:
        if key in seen:
            raise JsonRejected(
                f"key {key!r} appears twice in one object; send each key once",
                details={"key": key},
            )
        seen.add(key)
    return obj


def _constant(name: str) -> Any:
    raise JsonRejected(f"{name} is not a JSON number", details={"token": name})


_CONTAINERS = (dict, list)


def too_deep(value: Any, limit: int = MAX_DEPTH) -> bool:
    """Whether `value` nests arrays/objects more than `limit` deep (the value is depth 1)."""
    if not isinstance(value, _CONTAINERS):
        return False
    return limit < 1 or not _within(value, limit)


def _within(node: dict[str, Any] | list[Any], levels: int) -> bool:
    for child in node.values() if type(node) is dict else node:
        if isinstance(child, _CONTAINERS) and (levels <= 1 or not _within(child, levels - 1)):
            return False
    return True


def _has_lone_surrogate(value: Any) -> bool:
    stack = [value]
    while stack:
        node = stack.pop()
        if isinstance(node, str):
            try:
                node.encode("utf-8")
            except UnicodeEncodeError:
                return True
        elif isinstance(node, dict):
            stack.extend(node.keys())
            stack.extend(node.values())
        elif isinstance(node, list):
            stack.extend(node)
    return False


def decode_utf8(raw: bytes, what: str) -> str:
    """`raw` as UTF-8 text (a BOM is refused too: JSON text has none)."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise JsonRejected(
            f"{what} is not UTF-8 text: {exc.reason} at byte {exc.start}",
            details={"position": exc.start},
        ) from None
    if text.startswith("\ufeff"):
        raise JsonRejected(f"{what} starts with a byte order mark; send plain UTF-8")
    return text


def loads(raw: bytes | str, what: str, *, max_depth: int = MAX_DEPTH) -> Any:
    """Parse one JSON text strictly; `JsonRejected` says what is wrong and where."""
    text = decode_utf8(raw, what) if isinstance(raw, bytes | bytearray) else raw
    try:
        value = json.loads(text, object_pairs_hook=_object_pairs, parse_constant=_constant)
    except json.JSONDecodeError as exc:
        raise JsonRejected(
            f"{what} is not valid JSON: {exc.msg} at line {exc.lineno} "
            f"column {exc.colno} (char {exc.pos})",
            details={"line": exc.lineno, "column": exc.colno, "position": exc.pos},
        ) from None
    except RecursionError:
        value = None  # deeper than Python can parse: far past the limit
        deep = True
    else:
        deep = too_deep(value, max_depth)
    if deep:
        raise JsonRejected(
            f"{what} nests arrays and objects more than {max_depth} deep",
            details={"max_depth": max_depth},
        )
    if _SURROGATE_ESCAPE.search(text) and _has_lone_surrogate(value):
        raise JsonRejected(
            f"{what} holds a lone UTF-16 surrogate escape (\\ud800-\\udfff); "
            "strings must be Unicode text"
        )
    return value


def loads_object(raw: bytes | str, what: str) -> dict[str, Any]:
    """One JSON object (a tool's input) parsed strictly."""
    value = loads(raw, what)
    if not isinstance(value, dict):
        kind = {list: "an array", str: "a string", bool: "a boolean", type(None): "null"}.get(
            type(value), "a number"
        )
        raise JsonRejected(
            f"{what} must be a JSON object holding the tool's input, not {kind}",
            details={"got": kind.rpartition(" ")[2]},
        )
    return value
