"""Turning an HTTP request into a tool's JSON arguments.

Bodies are read with a hard size limit (Content-Length and a running count, so an
unbounded or lying client cannot make us buffer more). Query and path strings are
coerced by the tool's input JSON Schema; the pipeline then validates the result, so a
value that cannot be coerced is passed through and reported there precisely.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable
from typing import Any

from starlette.requests import Request

from registry.errors import InvalidInput, PayloadTooLarge, UnsupportedMediaType
from servers import jsontext

_INTEGER = re.compile(r"^[+-]?\d+$")
_BOOLEANS = {"true": True, "1": True, "yes": True, "on": True}
_BOOLEANS |= {"false": False, "0": False, "no": False, "off": False}


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


def _types(schema: dict[str, Any]) -> set[str]:
    """Every JSON type a schema admits (through `anyOf`/`oneOf`, as pydantic emits)."""
    declared = schema.get("type")
    types = {declared} if isinstance(declared, str) else set(declared or ())
    for key in ("anyOf", "oneOf"):
        for option in schema.get(key, ()):
            if isinstance(option, dict):
                types |= _types(option)
    return types


def _option(schema: dict[str, Any], key: str) -> dict[str, Any]:
    """`schema[key]` from the schema or the first `anyOf` member that has it."""
    if isinstance(schema.get(key), dict):
        return dict(schema[key])
    for option in [*schema.get("anyOf", ()), *schema.get("oneOf", ())]:
        if isinstance(option, dict) and isinstance(option.get(key), dict):
            return dict(option[key])
    return {}


def coerce(value: str, schema: dict[str, Any]) -> Any:
    """One query/path string as the scalar its schema asks for (strings stay strings)."""
    types = _types(schema)
    if not types or "string" in types:
        return value
    lowered = value.strip().lower()
    if "integer" in types and _INTEGER.match(lowered):
        return int(lowered)
    if "number" in types:
        try:
            number = float(lowered)
        except ValueError:
            pass
        else:
            if math.isfinite(number):
                return number
    if "boolean" in types and lowered in _BOOLEANS:
        return _BOOLEANS[lowered]
    if "null" in types and lowered in ("", "null"):
        return None
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
        if dot and "object" in _types(prop):
            target = args.setdefault(field, {})
            if not isinstance(target, dict):
                raise InvalidInput(
                    f"query parameter {field!r} is given both as JSON and as {key}",
                    details={"parameter": field},
                )
            item_schema = _option(prop, "additionalProperties")
            item_schema = _option(prop, "properties").get(sub, item_schema)
            target[sub] = coerce(values[-1], item_schema)
        elif "array" in _types(prop):
            args[key] = [coerce(v, _option(prop, "items")) for v in values]
        elif len(values) > 1:
            raise InvalidInput(
                f"query parameter {key!r} was given {len(values)} times; it takes one value",
                details={"parameter": key},
            )
        elif "object" in _types(prop):
            args[key] = _object_value(key, values[0])
        else:
            args[key] = coerce(values[0], prop)
    return args


def path_args(params: dict[str, str], schema: dict[str, Any]) -> dict[str, Any]:
    properties: dict[str, Any] = schema.get("properties", {})
    return {name: coerce(value, properties.get(name, {})) for name, value in params.items()}
