"""Make two tiers' answers comparable: mask what legitimately differs, then diff the rest.

Every call gets its own `trace_id` and `timestamp`, and a tool may declare more volatile
fields (`volatile_paths`, dotted, `*` for every list item or dict value). Those values are
replaced by a marker (their presence still counts); everything else must be equal, with
JSON semantics: dict order does not matter, list order does, `true` is not `1`.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

VOLATILE = "<volatile>"
ALWAYS_VOLATILE = frozenset({"trace_id", "timestamp"})


def normalize(value: Any, volatile_paths: Iterable[str] = ()) -> Any:
    """A copy of `value` with the always-volatile keys and `volatile_paths` masked."""
    masked = _mask_keys(value)
    for path in volatile_paths:
        masked = _mask_path(masked, path.split("."))
    return masked


def _mask_keys(node: Any) -> Any:
    if isinstance(node, dict):
        return {k: VOLATILE if k in ALWAYS_VOLATILE else _mask_keys(v) for k, v in node.items()}
    if isinstance(node, list):
        return [_mask_keys(item) for item in node]
    return node


def _mask_path(node: Any, parts: list[str]) -> Any:
    if not parts:
        return VOLATILE
    head, rest = parts[0], parts[1:]
    if head == "*":
        if isinstance(node, list):
            return [_mask_path(item, rest) for item in node]
        if isinstance(node, dict):
            return {k: _mask_path(v, rest) for k, v in node.items()}
        return node
    if isinstance(node, dict) and head in node:
        return {**node, head: _mask_path(node[head], rest)}
    if isinstance(node, list) and head.isdigit() and int(head) < len(node):
        index = int(head)
        return [_mask_path(v, rest) if i == index else v for i, v in enumerate(node)]
    return node


def differences(expected: Any, actual: Any, *, limit: int = 5) -> list[str]:
    """Where `actual` differs from `expected`, as `path: expected != actual` lines."""
    found: list[str] = []
    _diff(expected, actual, "", found, limit)
    return found


def _kind(value: Any) -> str:
    if isinstance(value, bool) or value is None:
        return type(value).__name__
    if isinstance(value, int | float):
        return "number"
    return type(value).__name__


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def _diff(expected: Any, actual: Any, path: str, found: list[str], limit: int) -> None:
    if len(found) >= limit:
        return
    where = path or "(root)"
    if _kind(expected) != _kind(actual):
        found.append(f"{where}: {_short(expected)} != {_short(actual)}")
    elif isinstance(expected, dict):
        for key in sorted(expected.keys() | actual.keys(), key=str):
            sub = f"{path}.{key}" if path else str(key)
            if key not in actual:
                found.append(f"{sub}: missing")
            elif key not in expected:
                found.append(f"{sub}: unexpected {_short(actual[key])}")
            else:
                _diff(expected[key], actual[key], sub, found, limit)
            if len(found) >= limit:
                return
    elif isinstance(expected, list):
        if len(expected) != len(actual):
            found.append(f"{where}: {len(expected)} items != {len(actual)} items")
            return
        for i, (exp, act) in enumerate(zip(expected, actual, strict=True)):
            _diff(exp, act, f"{path}.{i}" if path else str(i), found, limit)
    elif expected != actual:
        found.append(f"{where}: {_short(expected)} != {_short(actual)}")
