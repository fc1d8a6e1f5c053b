"""Text → JSON values by a JSON Schema: one set of rules for CLI flags, query strings and
path segments, so `--limit 5`, `?limit=5` and `/x/5` mean the same everywhere.

`limit=5` becomes an integer because the schema says so; booleans are true/false (also
yes/no, on/off, 1/0); `null` is null where the schema allows it. Stdlib only: the CLI
imports it on every start. The registry still validates everything: this only turns
strings into the JSON types the schema asks for.
"""

from __future__ import annotations

import json
import math
from typing import Any

_TRUE = frozenset({"true", "yes", "y", "on", "1"})
_FALSE = frozenset({"false", "no", "n", "off", "0"})


class UsageError(ValueError):
    """A text value that cannot be what the schema asks for (the CLI exits 2)."""


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
        if (
            isinstance(value, bool)
            or not isinstance(value, int | float)
            or not math.isfinite(value)
        ):
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
    """One string as the JSON value `schema` asks for (`UsageError` when it cannot be)."""
    types = schema_types(schema)
    if not types:
        value = _json(raw)
    elif raw == "null" and "null" in types:
        value = None  # JSON's null, where the schema allows it (else the literal text)
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
