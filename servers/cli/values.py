"""Command-line values → tool arguments, guided by the tool's input JSON Schema.

`limit=5` becomes an integer because the schema says so; `labels.env=dev` walks the schema
to build `{"labels": {"env": "dev"}}`; a map's key may itself hold dots
(`labels.app.kubernetes.io/name=web`). The registry still validates everything: this only
turns strings into the JSON types the schema asks for.
"""

from __future__ import annotations

import json
from typing import Any

_TRUE = frozenset({"true", "yes", "y", "on", "1"})
_FALSE = frozenset({"false", "no", "n", "off", "0"})


class UsageError(ValueError):
    """A command-line value the CLI cannot turn into what the schema asks (exit 2)."""


def schema_types(schema: dict[str, Any]) -> list[str]:
    """The JSON types a schema admits, `anyOf`/`oneOf` branches included (empty: any)."""
    declared = schema.get("type")
    types = [declared] if isinstance(declared, str) else list(declared or [])
    for key in ("anyOf", "oneOf"):
        for branch in schema.get(key) or ():
            types.extend(t for t in schema_types(branch) if t not in types)
    return types


def choices(schema: dict[str, Any]) -> list[Any] | None:
    """The allowed values of an `enum`/`const` schema (through `anyOf`), else None."""
    if "enum" in schema:
        return list(schema["enum"])
    if "const" in schema:
        return [schema["const"]]
    found = [c for b in schema.get("anyOf") or () for c in (choices(b) or ())]
    return found or None


def _branch(schema: dict[str, Any], json_type: str) -> dict[str, Any]:
    """The `anyOf` branch that describes `json_type` (the schema itself when not a union)."""
    for branch in schema.get("anyOf") or schema.get("oneOf") or ():
        if json_type in schema_types(branch):
            return dict(branch)
    return schema


def item_schema(schema: dict[str, Any]) -> dict[str, Any]:
    items = _branch(schema, "array").get("items")
    return items if isinstance(items, dict) else {}


def value_schema(schema: dict[str, Any], key: str) -> dict[str, Any] | None:
    """The schema of `key` inside an object schema: a declared property or a map's values."""
    obj = _branch(schema, "object")
    properties = obj.get("properties") or {}
    if key in properties:
        return dict(properties[key])
    extra = obj.get("additionalProperties")
    if isinstance(extra, dict):
        return extra
    patterns = obj.get("patternProperties") or {}
    if patterns:
        return dict(next(iter(patterns.values())))
    return None


def is_map(schema: dict[str, Any]) -> bool:
    """An object whose keys are data (labels), not declared fields."""
    obj = _branch(schema, "object")
    return not obj.get("properties") and (
        isinstance(obj.get("additionalProperties"), dict) or bool(obj.get("patternProperties"))
    )


def _json(raw: str) -> Any:
    try:
        return json.loads(raw)
    except ValueError:
        return raw


def _as_type(raw: str, json_type: str) -> Any:
    if json_type == "boolean":
        lowered = raw.strip().lower()
        if lowered in _TRUE | _FALSE:
            return lowered in _TRUE
        raise UsageError(f"expected true or false, got {raw!r}")
    if json_type == "integer":
        try:
            return int(raw)
        except ValueError:
            raise UsageError(f"expected an integer, got {raw!r}") from None
    if json_type == "number":
        value = _json(raw)
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise UsageError(f"expected a number, got {raw!r}")
        return value
    if json_type in ("object", "array"):
        value = _json(raw)
        if not isinstance(value, dict if json_type == "object" else list):
            raise UsageError(f"expected a JSON {json_type}, got {raw!r}")
        return value
    if json_type == "null" and raw == "null":
        return None
    raise UsageError(f"expected {json_type}, got {raw!r}")


def coerce(raw: str, schema: dict[str, Any]) -> Any:
    """One command-line string as the JSON value `schema` asks for."""
    types = schema_types(schema)
    if not types:
        value = _json(raw)
    elif raw == "null" and "null" in types:
        value = None
    elif "string" in types:
        value = raw
    elif "array" in types and not raw.lstrip().startswith("["):
        value = [coerce(raw, item_schema(schema))]
    else:
        errors: list[str] = []
        for json_type in (t for t in types if t != "null"):
            try:
                value = _as_type(raw, json_type)
                break
            except UsageError as exc:
                errors.append(str(exc))
        else:
            raise UsageError(" or ".join(errors) or f"unusable value {raw!r}")
    allowed = choices(schema)
    if allowed is not None and value not in allowed and value is not None:
        raise UsageError(f"{raw!r} is not one of: {', '.join(map(str, allowed))}")
    return value


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
