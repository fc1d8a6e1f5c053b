"""The tool listing: the same data on `tools.list`, `GET /v1/tools` and the CLI cache."""

from __future__ import annotations

from typing import Any

from pydantic import Field

from registry.model import StrictModel, ToolSpec
from registry.schema import input_schema, output_schema


class RestRoute(StrictModel):
    method: str
    path: str


class ToolInfo(StrictModel):
    """One operation as callers see it."""

    name: str
    summary: str
    description: str
    permission: str
    risk: str = Field(pattern="^(read|write|destructive)$")
    requires_approval: bool
    idempotent: bool
    tags: list[str]
    rest: RestRoute | None
    input_schema: dict[str, Any]
    output_schema: dict[str, Any]


class ToolListing(StrictModel):
    """Every operation, sorted by name."""

    tools: list[ToolInfo]


def tool_info(spec: ToolSpec) -> ToolInfo:
    return ToolInfo(
        name=spec.name,
        summary=spec.summary,
        description=spec.description or spec.summary,
        permission=spec.permission,
        risk=spec.risk.value,
        requires_approval=spec.requires_approval,
        idempotent=spec.idempotent,
        tags=list(spec.tags),
        rest=None if spec.rest is None else RestRoute(method=spec.rest.method, path=spec.rest.path),
        input_schema=input_schema(spec.input_model),
        output_schema=output_schema(spec.output_model),
    )


def listing_output_schema() -> dict[str, Any]:
    """The published JSON Schema of a listing; every tier's listing must validate."""
    return output_schema(ToolListing)
