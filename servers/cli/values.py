"""Command-line `key=value` pairs → tool arguments, guided by the tool's input JSON Schema.

`labels.env=dev` walks the schema to build `{"labels": {"env": "dev"}}`; a map's key may
itself hold dots (`labels.app.kubernetes.io/name=web`). Values are typed by
`servers.coercion`, the same rules as HTTP query strings.
"""

from __future__ import annotations

from typing import Any

from servers.coercion import UsageError, coerce, is_map, schema_types, value_schema


def assign(target: dict[str, Any], key: str, raw: str, schema: dict[str, Any]) -> None:
    """Set dotted `key` = `raw` in `target`, coerced by `schema` (an object schema).

    Walks declared properties one dot at a time; inside a map the rest of the key is one
    map key. A repeated array key appends.
    """
    parts = key.split(".")
    node, here = target, schema
    while True:
        name = parts.pop(0)
        if is_map(here) and parts:
            name, parts = ".".join([name, *parts]), []
        child = value_schema(here, name) or {}
        if not parts:
            break
        nested = node.setdefault(name, {})
        if not isinstance(nested, dict):
            raise UsageError(f"{key}: {name} already holds a value, not an object")
        node, here = nested, child
    value = coerce(raw, child)
    previous = node.get(name)
    if isinstance(previous, list) and "array" in schema_types(child):
        previous.extend(value if isinstance(value, list) else [value])
    elif isinstance(previous, dict) and isinstance(value, dict):
        previous.update(value)
    else:
        node[name] = value


def parse_assignments(pairs: list[str], schema: dict[str, Any]) -> dict[str, Any]:
    """`["name=web-1", "labels.env=dev"]` → `{"name": "web-1", "labels": {"env": "dev"}}`."""
    args: dict[str, Any] = {}
    for pair in pairs:
        key, sep, raw = pair.partition("=")
        if not sep or not key:
            raise UsageError(f"expected key=value, got {pair!r}")
        try:
            assign(args, key, raw, schema)
        except UsageError as exc:
            raise UsageError(f"{key}: {exc}") from None
    return args
