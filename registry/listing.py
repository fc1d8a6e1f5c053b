"""The tool listing: the same data on `tools.list`, `GET /v1/tools` and the CLI cache."""

from __future__ import annotations

from typing import Any

from pydantic import Field

from registry.model import StrictModel, ToolSpec
from registry.schema import input_schema, output_schema


class RestRoute(StrictModel):
    method: str
    path: str


class StreamInfo(StrictModel):
    """The tool can also be read as a stream (SSE on HTTP, lines on the CLI)."""

    resume_arg: str = Field(description="The input field that resumes after an item number")


class FollowInfo(StrictModel):
    """While a call blocks on a workflow, stream tool `stream` shows its progress."""

    stream: str
    id_field: str
    filter_field: str
    when: str | None


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
    stream: StreamInfo | None = None
    follow: FollowInfo | None = None
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
        stream=None if spec.stream is None else StreamInfo(resume_arg=spec.stream.resume_arg),
        follow=None
        if spec.follow is None
        else FollowInfo(
            stream=spec.follow.stream,
            id_field=spec.follow.id_field,
            filter_field=spec.follow.filter_field,
            when=spec.follow.when,
        ),
        input_schema=input_schema(spec.input_model),
        output_schema=output_schema(spec.output_model),
    )


def listing_output_schema() -> dict[str, Any]:
    """The published JSON Schema of a listing; every tier's listing must validate."""
    return output_schema(ToolListing)
