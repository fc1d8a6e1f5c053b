"""The OpenAPI 3.1 document, generated from the registry (never written by hand).

One operation per tool at `POST /v1/tools/<name>`, one per REST alias (compatibility
routes marked `deprecated`), plus `/health`, `/openapi.json` and `/metrics`. Error
responses come from the one error table, so the document cannot drift from what the tier
answers.
"""

from __future__ import annotations

import weakref
from typing import Any

from daemons.common.version import platform_version
from registry import (
    ERROR_TABLE,
    ErrorCode,
    Registry,
    RestAlias,
    Risk,
    ToolSpec,
    listing_output_schema,
)
from registry.schema import input_schema, output_schema
from servers.http.sse import EVENTS_TOOL

_JSON = "application/json"
_SSE = "text/event-stream"
_ALWAYS = (
    ErrorCode.UNAUTHENTICATED,
    ErrorCode.FORBIDDEN,
    ErrorCode.NOT_FOUND,
    ErrorCode.INVALID_INPUT,
    ErrorCode.RATE_LIMITED,
    ErrorCode.INTERNAL,
    ErrorCode.UNAVAILABLE,
)
_BODY = (ErrorCode.PAYLOAD_TOO_LARGE, ErrorCode.UNSUPPORTED_MEDIA_TYPE)
_DESCRIPTIONS = {
    ErrorCode.INVALID_INPUT: "The input does not match the tool's input schema",
    ErrorCode.PAYLOAD_TOO_LARGE: "The request body is larger than the server accepts",
    ErrorCode.UNSUPPORTED_MEDIA_TYPE: "The request body is not application/json",
    ErrorCode.METHOD_NOT_ALLOWED: "The path does not accept this method",
    ErrorCode.NOT_FOUND: "No such tool, route or object",
    ErrorCode.UNAUTHENTICATED: "Missing or invalid bearer credential",
    ErrorCode.FORBIDDEN: "The caller's roles do not grant the tool's permission",
    ErrorCode.CONFLICT: "The change conflicts with the current state",
    ErrorCode.APPROVAL_REQUIRED: "The call needs an approval before it runs",
    ErrorCode.RATE_LIMITED: "Too many calls; retry later",
    ErrorCode.UNAVAILABLE: "A backing service is not available",
    ErrorCode.INTERNAL: "Unexpected failure; the server log has the trace id",
    ErrorCode.WORKFLOW_FAILED: "The call waited; the workflow ended without succeeding "
    "(`details`: its view and failed tasks)",
    ErrorCode.STILL_RUNNING: "The wait ran out; the workflow goes on (`details`: its view)",
}

_cache: weakref.WeakKeyDictionary[Registry, tuple[int, dict[str, Any]]] = (
    weakref.WeakKeyDictionary()
)


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _components() -> dict[str, Any]:
    envelope_common = {
        "trace_id": {"type": "string", "description": "Follows the call through every part"},
        "timestamp": {"type": "string", "format": "date-time"},
    }
    error = {
        "type": "object",
        "required": ["code", "message", "details"],
        "properties": {
            "code": {"type": "string", "enum": [code.value for code in ErrorCode]},
            "message": {"type": "string", "description": "What went wrong and what to do"},
            "details": {"type": "object"},
        },
    }
    return {
        "securitySchemes": {
            "bearerAuth": {
                "type": "http",
                "scheme": "bearer",
                "description": "An API key; the bootstrap one is "
                "PRVNG_HOME/credentials/admin-api-key",
            }
        },
        "schemas": {
            "Envelope": {
                "type": "object",
                "required": ["ok", "data", "trace_id", "timestamp"],
                "properties": {"ok": {"const": True}, "data": {}, **envelope_common},
            },
            "ErrorEnvelope": {
                "type": "object",
                "required": ["ok", "error", "trace_id", "timestamp"],
                "properties": {"ok": {"const": False}, "error": error, **envelope_common},
            },
            "ToolListing": listing_output_schema(),
            "Health": {
                "type": "object",
                "required": ["status", "components"],
                "properties": {
                    "status": {"enum": ["ok", "degraded"]},
                    "components": {
                        "type": "object",
                        "additionalProperties": {
                            "type": "object",
                            "properties": {
                                "ready": {"type": "boolean"},
                                "detail": {"type": "string"},
                            },
                        },
                    },
                },
            },
        },
        "responses": {
            code.value: {
                "description": _DESCRIPTIONS[code],
                "content": {_JSON: {"schema": _ref("ErrorEnvelope")}},
            }
            for code in ErrorCode
        },
    }


def _success(data_schema: dict[str, Any]) -> dict[str, Any]:
    schema = {"allOf": [_ref("Envelope"), {"properties": {"data": data_schema}}]}
    return {
        "description": "The envelope; `data` is the tool's output",
        "content": {_JSON: {"schema": schema}},
    }


def _error_codes(spec: ToolSpec, has_body: bool) -> list[ErrorCode]:
    codes = list(_ALWAYS)
    if has_body:
        codes += _BODY
    if spec.risk is not Risk.READ:
        codes.append(ErrorCode.CONFLICT)
    if spec.requires_approval:
        codes.append(ErrorCode.APPROVAL_REQUIRED)
    if spec.follow is not None:  # it can wait for a workflow
        codes += (ErrorCode.WORKFLOW_FAILED, ErrorCode.STILL_RUNNING)
    return codes


def _responses(spec: ToolSpec, has_body: bool) -> dict[str, Any]:
    responses = {"200": _success(output_schema(spec.output_model))}
    for code in _error_codes(spec, has_body):
        responses[str(ERROR_TABLE[code].http_status)] = {"$ref": f"#/components/responses/{code}"}
    return responses


def _operation(spec: ToolSpec, operation_id: str) -> dict[str, Any]:
    description = spec.description or spec.summary
    return {
        "operationId": operation_id,
        "summary": spec.summary,
        "description": f"{description}\n\nPermission `{spec.permission}`, risk `{spec.risk}`.",
        "tags": [spec.group],
    }


def _body(schema: dict[str, Any]) -> dict[str, Any]:
    return {"required": bool(schema.get("required")), "content": {_JSON: {"schema": schema}}}


def _tool_operation(spec: ToolSpec) -> dict[str, Any]:
    return {
        **_operation(spec, spec.name),
        "requestBody": _body(input_schema(spec.input_model)),
        "responses": _responses(spec, has_body=True),
    }


def _parameter(name: str, location: str, schema: dict[str, Any], required: bool) -> dict[str, Any]:
    description = schema.get("description", "")
    types = {schema.get("type")} | {o.get("type") for o in schema.get("anyOf", ())}
    param: dict[str, Any] = {"name": name, "in": location, "required": required}
    if "object" in types and location == "query":
        # Documented as one JSON value: OpenAPI's default (form, exploded) would spread
        # the keys over the query, where they read as unknown parameters.
        description = f"{description} (a JSON object, or {name}.KEY=VALUE pairs)".strip()
        param["content"] = {_JSON: {"schema": schema}}
    else:
        param["schema"] = schema
    if description:
        param["description"] = description
    return param


def _alias_operation(spec: ToolSpec, route: RestAlias, operation_id: str) -> dict[str, Any]:
    schema = input_schema(spec.input_model)
    properties: dict[str, Any] = schema.get("properties", {})
    required = set(schema.get("required", ()))
    in_path = route.path_params
    params = [_parameter(name, "path", properties[name], True) for name in in_path]
    operation = _operation(spec, operation_id)
    has_body = route.method in ("POST", "PUT", "PATCH")
    if has_body:
        body_schema = {
            **schema,
            "properties": {k: v for k, v in properties.items() if k not in in_path},
            "required": [k for k in schema.get("required", ()) if k not in in_path],
        }
        operation["requestBody"] = _body(body_schema)
    else:
        params += [
            _parameter(name, "query", prop, name in required)
            for name, prop in properties.items()
            if name not in in_path
        ]
    if params:
        operation["parameters"] = params
    operation["responses"] = _responses(spec, has_body)
    return operation


def _fixed_paths() -> dict[str, Any]:
    errors = {
        str(ERROR_TABLE[code].http_status): {"$ref": f"#/components/responses/{code}"}
        for code in (ErrorCode.UNAUTHENTICATED, ErrorCode.INVALID_INPUT, ErrorCode.INTERNAL)
    }
    health = {
        "description": "Every component's readiness",
        "content": {_JSON: {"schema": _ref("Health")}},
    }
    text = {"type": "string"}
    return {
        "/health": {
            "get": {
                "operationId": "health",
                "summary": "Readiness: 200 when every component is ready, else 503",
                "tags": ["meta"],
                "security": [],
                "responses": {"200": health, "503": health},
            }
        },
        "/openapi.json": {
            "get": {
                "operationId": "openapi",
                "summary": "This document",
                "tags": ["meta"],
                "security": [],
                "responses": {"200": {"description": "OpenAPI 3.1", "content": {_JSON: {}}}},
            }
        },
        "/metrics": {
            "get": {
                "operationId": "metrics",
                "summary": "Tool call counts and latencies in the Prometheus text format",
                "tags": ["meta"],
                "responses": {
                    "200": {
                        "description": "Prometheus exposition format",
                        "content": {"text/plain": {"schema": text}},
                    },
                    **errors,
                },
            }
        },
    }


def _stream_operation(spec: ToolSpec, operation_id: str) -> dict[str, Any]:
    """A streaming tool over SSE: its input as query parameters, its items as events."""
    assert spec.stream is not None
    schema = input_schema(spec.input_model)
    required = set(schema.get("required", ()))
    item = output_schema(spec.stream.item_model)
    operation = _operation(spec, operation_id)
    operation["description"] += (
        f"\n\nServer-sent events: `id: <{spec.stream.cursor_field}>`, "
        f"`event: <{spec.stream.kind_field}>`, `data: <item JSON>`; `Last-Event-ID` resumes "
        f"(as `{spec.stream.resume_arg}`). The item schema is `x-sse-item-schema`."
    )
    operation["parameters"] = [
        _parameter(name, "query", prop, name in required)
        for name, prop in schema.get("properties", {}).items()
    ]
    errors = {
        str(ERROR_TABLE[code].http_status): {"$ref": f"#/components/responses/{code}"}
        for code in _error_codes(spec, has_body=False)
    }
    operation["responses"] = {
        "200": {
            "description": "The stream, until the client leaves (or the stream ends)",
            "content": {
                _SSE: {"schema": {"type": "string"}, "x-sse-item-schema": item},
            },
        },
        **errors,
    }
    return operation


def _build(registry: Registry) -> dict[str, Any]:
    specs = registry.list()
    paths: dict[str, Any] = _fixed_paths()
    for spec in specs:
        paths[f"/v1/tools/{spec.name}"] = {"post": _tool_operation(spec)}
        if spec.stream is not None:
            operation = _stream_operation(spec, f"stream.{spec.name}")
            paths[f"/v1/streams/{spec.name}"] = {"get": operation}
    if EVENTS_TOOL in registry:
        compat = _stream_operation(registry.get(EVENTS_TOOL), "events")
        paths["/events"] = {"get": {**compat, "tags": ["meta"]}}
    for spec in specs:
        for i, route in enumerate(spec.routes):
            operation_id = f"rest.{spec.name}" + (f".compat{i}" if i else "")
            operation = _alias_operation(spec, route, operation_id)
            if i:
                current = spec.routes[0]
                operation["deprecated"] = True
                operation["description"] += f" Deprecated: use {current.method} {current.path}."
            paths.setdefault(route.path, {})[route.method.lower()] = operation
    groups = sorted({spec.group for spec in specs} | {"meta"})
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Provisioning Platform",
            "version": platform_version(),
            "description": "Every operation of the platform; the same tools are MCP tools "
            "at /mcp and `prvng` commands. Responses are envelopes.",
        },
        "security": [{"bearerAuth": []}],
        "tags": [{"name": group} for group in groups],
        "paths": paths,
        "components": _components(),
    }


def openapi_document(registry: Registry) -> dict[str, Any]:
    """The document for this registry (cached until its set of tools changes)."""
    cached = _cache.get(registry)
    if cached is None or cached[0] != len(registry):
        cached = (len(registry), _build(registry))
        _cache[registry] = cached
    return cached[1]
