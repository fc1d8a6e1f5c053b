"""`tools.help`: what a tool needs and how to call it on every tier, from the registry.

For one tool: its required and optional fields with their types, its permission, risk
and approval, and an example call for MCP, curl and `prvng` (a contract case's arguments
when the tool has one, else placeholders from its input schema).
For a topic: the tools whose name, summary or tags match it. With neither: the toolsets.
"""

from __future__ import annotations

import json
import shlex
from functools import cache
from typing import Any

from pydantic import Field

from registry import (
    ContractCase,
    RestAlias,
    Risk,
    StrictModel,
    ToolContext,
    ToolInfo,
    ToolSpec,
)
from registry.toolsets import toolset_of
from tools.meta import listed_tool

DEFAULT_URL = "http://127.0.0.1:8080"
TOPIC_MATCHES = 10


class HelpInput(StrictModel):
    tool: str | None = Field(default=None, max_length=128, description="A tool name")
    topic: str | None = Field(default=None, max_length=200, description="Words to look for")


class ToolHelp(StrictModel):
    name: str
    summary: str
    permission: str
    risk: str
    approval: str
    required: list[str] = Field(description="`field: type` the call must give")
    optional: list[str]
    examples: dict[str, str] = Field(description="One call each on mcp, curl and prvng")


class HelpOutput(StrictModel):
    tools: list[ToolHelp]
    toolsets: dict[str, list[str]] = Field(description="With no tool or topic: every toolset")


def _type(schema: dict[str, Any]) -> str:
    if "enum" in schema:
        return "|".join(map(str, schema["enum"]))
    if "anyOf" in schema:
        return "|".join(_type(s) for s in schema["anyOf"])
    return str(schema.get("type", "any"))


def _example(name: str, schema: dict[str, Any]) -> Any:
    """A value the field accepts, for an example call."""
    if "anyOf" in schema:
        branch: dict[str, Any] = next((s for s in schema["anyOf"] if s.get("type") != "null"), {})
        return _example(name, branch)
    if "enum" in schema:
        return schema["enum"][0]
    kind = schema.get("type")
    if kind == "integer" or kind == "number":
        return schema.get("minimum", 1)
    if kind == "boolean":
        return True
    if kind == "array":
        return [_example(name, schema.get("items") or {"type": "string"})]
    if kind == "object":
        return {}
    return f"<{name}>"


def _flag(key: str, value: Any) -> str:
    flag = "--" + key.replace("_", "-")
    if value is True:
        return flag
    if value is False:
        return "--no-" + flag.removeprefix("--")
    text = value if isinstance(value, str) else json.dumps(value)
    return f"{flag} {shlex.quote(text)}"


@cache
def _case_args() -> dict[str, dict[str, Any]]:
    """Each tool's first passing contract case without set-up: a call known to work."""
    from tools import all_specs  # the package lists this module: import it when called

    found: dict[str, dict[str, Any]] = {}
    for spec in all_specs():
        for case in spec.cases:
            if case.expects_ok and not case.setup and spec.name not in found:
                found[spec.name] = {k: v for k, v in case.args.items() if k != "id"}
    return found


def examples(info: ToolInfo) -> dict[str, str]:
    """Example calls: a contract case's arguments, else placeholders for the required."""
    schema = info.input_schema
    props: dict[str, Any] = schema.get("properties") or {}
    args = _case_args().get(info.name)
    if args is None:
        args = {k: _example(k, props[k]) for k in schema.get("required") or () if k in props}
    body = json.dumps(args)
    return {
        "mcp": json.dumps(
            {"method": "tools/call", "params": {"name": info.name, "arguments": args}}
        ),
        "curl": f"curl -s -X POST {DEFAULT_URL}/v1/tools/{info.name} -H "
        f"\"Authorization: Bearer $PRVNG_API_KEY\" -H 'Content-Type: application/json' "
        f"-d {shlex.quote(body)}",
        "prvng": " ".join(
            ["prvng", *info.name.split("."), *(_flag(k, v) for k, v in args.items())]
        ),
    }


def _approval(info: ToolInfo) -> str:
    if info.requires_approval:
        return "always: an approver must sign it"
    if info.follow is not None:
        return "the keeper policy decides per target (keeper_policy.ncl)"
    return "none"


def tool_help(info: ToolInfo) -> ToolHelp:
    props: dict[str, Any] = info.input_schema.get("properties") or {}
    required = set(info.input_schema.get("required") or ())
    fields = {k: f"{k}: {_type(v)}" for k, v in props.items()}
    return ToolHelp(
        name=info.name,
        summary=info.summary,
        permission=info.permission,
        risk=info.risk,
        approval=_approval(info),
        required=[v for k, v in fields.items() if k in required],
        optional=[v for k, v in fields.items() if k not in required],
        examples=examples(info),
    )


def _score(info: ToolInfo, words: list[str]) -> int:
    text = " ".join([info.name, info.summary, *info.tags, toolset_of(info.name)]).lower()
    return sum(word in text for word in words)


async def help_tool(args: HelpInput, ctx: ToolContext) -> HelpOutput:
    if args.tool is not None:
        return HelpOutput(tools=[tool_help(listed_tool(ctx, args.tool))], toolsets={})
    tools = {info.name: info for info in ctx.listing().tools}
    if args.topic is not None:
        words = [w for w in args.topic.lower().replace(".", " ").split() if len(w) > 1]
        scored = sorted((-_score(i, words), i.name) for i in tools.values())
        found = [tools[name] for score, name in scored if score < 0][:TOPIC_MATCHES]
        return HelpOutput(tools=[tool_help(info) for info in found], toolsets={})
    toolsets: dict[str, list[str]] = {}
    for name in sorted(tools):
        toolsets.setdefault(toolset_of(name), []).append(name)
    return HelpOutput(tools=[], toolsets=toolsets)


TOOLS = [
    ToolSpec(
        name="tools.help",
        summary="Explain a tool (fields, risk, example calls on MCP, curl, prvng) or find "
        "tools for a topic",
        input_model=HelpInput,
        output_model=HelpOutput,
        handler=help_tool,
        permission="tools:read",
        risk=Risk.READ,
        idempotent=True,
        rest=RestAlias("GET", "/v1/help"),
        tags=("meta", "settings"),
        cases=(
            ContractCase("one tool", {"tool": "server.get"}),
            ContractCase("a topic", {"topic": "workspace config"}),
            ContractCase("toolsets"),
            ContractCase("unknown tool", {"tool": "server.gett"}, expect="not_found"),
        ),
    ),
]
