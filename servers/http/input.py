"""Turning an HTTP request into a tool's JSON arguments.

Bodies are read with a hard size limit (Content-Length and a running count, so an
unbounded or lying client cannot make us buffer more). Query and path strings are
typed by the tool's input JSON Schema (`servers.coercion`, the CLI's rules); the pipeline
then validates the result, so a value that cannot be typed is passed through and reported
there precisely.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from starlette.requests import Request

from registry.errors import InvalidInput, PayloadTooLarge, UnsupportedMediaType
from servers import jsontext
from servers.coercion import UsageError, coerce, item_schema, schema_types, value_schema


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
    body = await read_body(request, limit)
    if not body:
        return {}
    return _parse_object(body)


async def read_body(request: Request, limit: int) -> bytes:
    """The whole body, refused (`PayloadTooLarge`) once it is declared or grows past `limit`."""
    _declared_length(request, limit)
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            raise PayloadTooLarge(
                f"the request body exceeds the limit of {limit} bytes "
                "(PRVNG_MAX_BODY_BYTES raises it)",
                details={"limit": limit},
            )
    return bytes(body)


def _parse_object(body: bytes) -> dict[str, Any]:
    try:
        return jsontext.loads_object(body, "the request body")
    except jsontext.JsonRejected as exc:
        raise InvalidInput(exc.message, details=exc.details) from None


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
        return jsontext.loads(value, f"query parameter {name!r}")
    except jsontext.JsonRejected as exc:
        raise InvalidInput(
            f"{exc.message}; it is an object: send {name}.KEY=VALUE pairs or a JSON object",
            details={"parameter": name, **exc.details},
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
