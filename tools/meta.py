"""`tools.list` and `tools.describe`: the operations this platform offers, and everything
about one (what the compact MCP listing leaves out: `prvng://docs/{tool}`)."""

from __future__ import annotations

import difflib
from functools import cache

from pydantic import Field

from registry import (
    ContractCase,
    NotFound,
    RestAlias,
    Risk,
    StrictModel,
    ToolContext,
    ToolInfo,
    ToolListing,
    ToolSpec,
)
from registry.errors import ERROR_TABLE, ErrorCode

_EVERY_CALL = (
    ErrorCode.INVALID_INPUT,
    ErrorCode.UNAUTHENTICATED,
    ErrorCode.FORBIDDEN,
    ErrorCode.RATE_LIMITED,
    ErrorCode.UNAVAILABLE,
    ErrorCode.INTERNAL,
)
"""What the pipeline may answer for any tool."""
_FOLLOWED = (ErrorCode.WORKFLOW_FAILED, ErrorCode.STILL_RUNNING)


class ListToolsInput(StrictModel):
    group: str | None = Field(
        default=None, description="Only tools of this group (e.g. 'server')", max_length=64
    )
    tag: str | None = Field(default=None, description="Only tools with this tag", max_length=64)


async def list_tools(args: ListToolsInput, ctx: ToolContext) -> ToolListing:
    listing = ctx.listing()
    if args.group is None and args.tag is None:
        return listing
    return ToolListing(
        tools=[
            info
            for info in listing.tools
            if (args.group is None or info.name.rsplit(".", 1)[0] == args.group)
            and (args.tag is None or args.tag in info.tags)
        ]
    )


class DescribeInput(StrictModel):
    name: str = Field(
        min_length=1, max_length=128, pattern=r"^[a-z0-9_.]+$", description="A tool's name"
    )


class ErrorInfo(StrictModel):
    code: str
    http_status: int
    exit_code: int


class ToolDoc(ToolInfo):
    """A tool's listing entry with the errors it can answer."""

    errors: list[ErrorInfo] = Field(description="Codes this tool may fail with (every tier)")


@cache
def _cases() -> dict[str, tuple[ContractCase, ...]]:
    """The contract cases of this platform's operations (what each is shown to fail with)."""
    from tools import all_specs  # at call time: `tools` lists this module

    return {spec.name: spec.cases for spec in all_specs()}


def _errors(info: ToolInfo) -> list[ErrorInfo]:
    codes = set(_EVERY_CALL)
    cases = _cases().get(info.name, ())
    codes.update(ErrorCode(case.expect) for case in cases if not case.expects_ok)
    if info.requires_approval:
        codes.add(ErrorCode.APPROVAL_REQUIRED)
    if info.follow is not None:
        codes.update(_FOLLOWED)
    return [
        ErrorInfo(
            code=c.value, http_status=ERROR_TABLE[c].http_status, exit_code=ERROR_TABLE[c].exit_code
        )
        for c in sorted(codes, key=lambda c: c.value)
    ]


def listed_tool(ctx: ToolContext, name: str) -> ToolInfo:
    """The tool `name` as the caller's listing shows it; `NotFound` (with the closest names)
    for a tool it does not have or may not call."""
    tools = {info.name: info for info in ctx.listing().tools}
    if (info := tools.get(name)) is not None:
        return info
    close = difflib.get_close_matches(name, list(tools), n=3)
    hint = f"did you mean {', '.join(close)}?" if close else "`prvng tools list` lists them"
    raise NotFound(
        f"no tool {name!r} that you may call; {hint}", details={"tool": name, "close": close}
    )


async def describe_tool(args: DescribeInput, ctx: ToolContext) -> ToolDoc:
    info = listed_tool(ctx, args.name)
    return ToolDoc(**info.model_dump(), errors=_errors(info))


TOOLS = [
    ToolSpec(
        name="tools.list",
        summary="List every operation with its schemas, permission and risk",
        description=(
            "The catalogue of operations, identical on MCP, HTTP and the CLI. Filter by "
            "group (`server`) or tag."
        ),
        input_model=ListToolsInput,
        output_model=ToolListing,
        handler=list_tools,
        permission="tools:read",
        risk=Risk.READ,
        idempotent=True,
        rest=RestAlias("GET", "/v1/tools"),
        tags=("meta",),
        cases=(
            ContractCase("all tools"),
            ContractCase("one group", {"group": "platform"}),
            ContractCase("unknown field", {"grup": "platform"}, expect="invalid_input"),
        ),
    ),
    ToolSpec(
        name="tools.describe",
        summary="Describe one operation in full: description, schemas, the errors it answers",
        input_model=DescribeInput,
        output_model=ToolDoc,
        handler=describe_tool,
        permission="tools:read",
        risk=Risk.READ,
        idempotent=True,
        rest=RestAlias("GET", "/v1/docs/{name}"),
        tags=("meta",),
        cases=(
            ContractCase("a tool", {"name": "server.get"}),
            ContractCase("unknown tool", {"name": "no.such"}, expect="not_found"),
        ),
    ),
]

__all__ = ["TOOLS"]
