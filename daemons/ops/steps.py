"""Canonical JSON encoding and JSON parsing of a big op in bounded steps.

An op carries its whole workflow (a spec may be over 1 MiB): encoding or parsing it in
one native call holds the GIL for tens of milliseconds, in a worker thread or not, and
the event loop serves nobody meanwhile. These do the same work a slice at a time and
let the loop run whenever a step took more than `STEP_S`; their results are exactly
`registry.canonical.canonical_json(value)` and `json.loads(text)`.
"""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

from registry.canonical import canonical_json

STEP_S = 0.002
"""The longest the loop is held between two yields (one slice may run over it)."""
SLICE = 64
"""List items encoded in one go."""
_DEPTH = 4
"""Objects this deep are parsed member by member, lists item by item (each item in one
piece); deeper values in one piece."""
_DECODER = json.JSONDecoder()
_WS = " \t\n\r"


class _Clock:
    def __init__(self) -> None:
        self.since = time.perf_counter()

    async def tick(self) -> None:
        if time.perf_counter() - self.since > STEP_S:
            await asyncio.sleep(0)  # let the loop serve others between slices
            self.since = time.perf_counter()


async def canonical_in_steps(value: Any) -> bytes:
    """`canonical_json(value)`, its dicts and long lists encoded a slice at a time."""
    parts: list[bytes] = []
    await _encode(value, parts, _Clock())
    return b"".join(parts)


def _nested(value: dict[Any, Any]) -> bool:
    """Whether a dict has something worth encoding in steps (a dict or a long list)."""
    return all(type(key) is str for key in value) and any(
        type(v) is dict or (type(v) is list and len(v) > SLICE) for v in value.values()
    )


async def _encode(value: Any, parts: list[bytes], clock: _Clock) -> None:
    if type(value) is dict and _nested(value):
        for i, key in enumerate(sorted(value)):
            parts.append(b"%s%s:" % (b"," if i else b"{", canonical_json(key)))
            await _encode(value[key], parts, clock)
        parts.append(b"}")
    elif type(value) is list and len(value) > SLICE:
        for start in range(0, len(value), SLICE):
            parts.append(b"," if start else b"[")
            parts.append(canonical_json(value[start : start + SLICE])[1:-1])
            await clock.tick()
        parts.append(b"]")
    else:
        parts.append(canonical_json(value))
        await clock.tick()


async def loads_in_steps(data: bytes) -> Any:
    """`json.loads(data)`: objects near the top parsed member by member, their lists item
    by item (each item by the standard decoder), the loop running between items."""
    text = data.decode()
    value, end = await _value(text, _skip(text, 0), _DEPTH, _Clock())
    if _skip(text, end) != len(text):
        raise ValueError(f"extra data at character {end}")
    return value


def _skip(text: str, i: int) -> int:
    while i < len(text) and text[i] in _WS:
        i += 1
    return i


def _expect(text: str, i: int, char: str) -> int:
    if text[i : i + 1] != char:
        raise ValueError(f"expected {char!r} at character {i}")
    return i + 1


async def _value(text: str, i: int, depth: int, clock: _Clock) -> tuple[Any, int]:
    opening = text[i : i + 1]
    if depth == 0 or opening not in ("{", "["):
        value, end = _DECODER.raw_decode(text, i)
        await clock.tick()
        return value, end
    i = _skip(text, i + 1)
    closing = "}" if opening == "{" else "]"
    items: Any = {} if opening == "{" else []
    if text[i : i + 1] == closing:
        return items, i + 1
    while True:
        if opening == "{":
            key, i = _DECODER.raw_decode(text, i) if text[i : i + 1] == '"' else (None, i)
            if type(key) is not str:
                raise ValueError(f"expected a property name at character {i}")
            i = _skip(text, _expect(text, _skip(text, i), ":"))
            items[key], i = await _value(text, i, depth - 1, clock)
        else:  # each item whole: a long list is where the bulk is
            item, i = await _value(text, i, 0, clock)
            items.append(item)
        i = _skip(text, i)
        if text[i : i + 1] == closing:
            return items, i + 1
        i = _skip(text, _expect(text, i, ","))
