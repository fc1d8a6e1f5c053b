"""Turning an HTTP request into a tool's JSON arguments.

Bodies are read with a hard size limit (Content-Length and a running count, so an
unbounded or lying client cannot make us buffer more). Query and path strings are
typed by the tool's input JSON Schema (`servers.coercion`, the CLI's rules); the pipeline
then validates the result, so a value that cannot be typed is passed through and reported
there precisely.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

from starlette.requests import Request

from registry.errors import InvalidInput, PayloadTooLarge, UnsupportedMediaType
from servers.coercion import UsageError, coerce, item_schema, schema_types, value_schema

_JSON_KINDS = {list: "an array", str: "a string", bool: "a boolean", type(None): "null"}


def _is_json(content_type: str) -> bool:
    media = content_type.partition(";")[0].strip().lower()
    return media == "application/json" or (
        media.startswith("application/") and media.endswith("+json")
    )


def _declared_length(request: Request, limit: int) -> int | None:
    raw = request.headers.get("content-length")
    if raw is None:
        return None
    try:
        length = int(raw)
    except ValueError:
        raise InvalidInput(f"Content-Length {raw!r} is not a number of bytes") from None
    if length > limit:
        raise PayloadTooLarge(
            f"the request body is {length} bytes; the limit is {limit} "
            "(PRVNG_MAX_BODY_BYTES raises it)",
            details={"limit": limit, "length": length},
        )
    return length


async def read_json_object(request: Request, limit: int) -> dict[str, Any]:
    """The body as a JSON object; an empty body is `{}` (so `curl -X POST` works)."""
    length = _declared_length(request, limit)
    chunked = "chunked" in request.headers.get("transfer-encoding", "").lower()
    if length == 0 or (length is None and not chunked):
        return {}
    content_type = request.headers.get("content-type", "")
    if not _is_json(content_type):
        raise UnsupportedMediaType(
            f"send the body as JSON with 'Content-Type: application/json', "
            f"not {content_type or 'no Content-Type'!r}",
            details={"content_type": content_type},
        )
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            raise PayloadTooLarge(
                f"the request body exceeds the limit of {limit} bytes "
                "(PRVNG_MAX_BODY_BYTES raises it)",
                details={"limit": limit},
            )
    if not body:
        return {}
    return _parse_object(bytes(body))


def _parse_object(body: bytes) -> dict[str, Any]:
    try:
        value = json.loads(body)
    except json.JSONDecodeError as exc:
        raise InvalidInput(
            f"the request body is not valid JSON: {exc.msg} at line {exc.lineno} "
            f"column {exc.colno} (char {exc.pos})",
            details={"line": exc.lineno, "column": exc.colno, "position": exc.pos},
        ) from None
    except UnicodeDecodeError as exc:
        raise InvalidInput(
            f"the request body is not UTF-8 text: {exc.reason} at byte {exc.start}",
            details={"position": exc.start},
        ) from None
    if not isinstance(value, dict):
        kind = _JSON_KINDS.get(type(value), "a number")
        raise InvalidInput(
            f"the request body must be a JSON object holding the tool's input, not {kind}",
            details={"got": kind.rpartition(" ")[2]},
        )
    return value


# -- query and path parameters ---------------------------------------------------------


def _typed(value: str, schema: dict[str, Any]) -> Any:
    """A query/path string as its schema's type; left as text when it cannot be, so the
    pipeline reports the field precisely."""
    try:
        return coerce(value, schema)
    except UsageError:
        return value


def _object_value(name: str, value: str) -> Any:
    try:
        return json.loads(value)
    except json.JSONDecodeError as exc:
        raise InvalidInput(
            f"query parameter {name!r} is an object: send {name}.KEY=VALUE pairs or a JSON "
            f"object ({exc.msg} at char {exc.pos})",
            details={"parameter": name},
        ) from None


def query_args(items: Iterable[tuple[str, str]], schema: dict[str, Any]) -> dict[str, Any]:
    """Query pairs → tool arguments: repeated keys make arrays, `field.key=v` objects."""
    properties: dict[str, Any] = schema.get("properties", {})
    grouped: dict[str, list[str]] = {}
    for key, value in items:
        grouped.setdefault(key, []).append(value)
    args: dict[str, Any] = {}
    for key, values in grouped.items():
        field, dot, sub = key.partition(".")
        prop = properties.get(field, {})
        if dot and "object" in schema_types(prop):
            target = args.setdefault(field, {})
            if not isinstance(target, dict):
                raise InvalidInput(
                    f"query parameter {field!r} is given both as JSON and as {key}",
                    details={"parameter": field},
                )
            target[sub] = _typed(values[-1], value_schema(prop, sub) or {})
        elif "array" in schema_types(prop):
            args[key] = [_typed(v, item_schema(prop)) for v in values]
        elif len(values) > 1:
            raise InvalidInput(
                f"query parameter {key!r} was given {len(values)} times; it takes one value",
                details={"parameter": key},
            )
        elif "object" in schema_types(prop):
            args[key] = _object_value(key, values[0])
        else:
            args[key] = _typed(values[0], prop)
    return args


def path_args(params: dict[str, str], schema: dict[str, Any]) -> dict[str, Any]:
    properties: dict[str, Any] = schema.get("properties", {})
    return {name: _typed(value, properties.get(name, {})) for name, value in params.items()}
