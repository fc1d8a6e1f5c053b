"""`tools.list`: the operations this platform offers."""

from __future__ import annotations

from pydantic import Field

from registry import ContractCase, RestAlias, Risk, StrictModel, ToolContext, ToolListing, ToolSpec


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
]

__all__ = ["TOOLS"]
