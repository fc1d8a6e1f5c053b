"""`completion/complete` for the arguments of prompts and resource templates.

Candidates come from the registry's read tools, called as the requester through the
pipeline, so a principal is offered only what it may read (a refused read offers
nothing). The argument's name says what it is, whichever prompt or template names it.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import mcp_types

from servers.mcp.calls import Caller

Source = Callable[[Caller, dict[str, str]], Awaitable[list[str]]]
KEEPER_POLICY = "keeper_policy.ncl"
"""The workspace file holding the keeper's rules (`policy` names)."""


async def _servers(caller: Caller, _: dict[str, str]) -> list[str]:
    data = await caller.data_or_none("server.list", {"limit": 1000})
    return [s["name"] for s in (data or {}).get("servers", [])]


async def _workflows(caller: Caller, _: dict[str, str]) -> list[str]:
    data = await caller.data_or_none("workflow.list", {"limit": 100})
    return [wf["id"] for wf in (data or {}).get("workflows", [])]


async def _tasks(caller: Caller, context: dict[str, str]) -> list[str]:
    workflow_id = context.get("id") or context.get("workflow_id")
    if not workflow_id:
        return []
    data = await caller.data_or_none("task.list", {"workflow_id": workflow_id})
    return [t["id"] for t in (data or {}).get("tasks", [])]


async def _config_paths(caller: Caller, _: dict[str, str]) -> list[str]:
    data = await caller.data_or_none("config.list", {})
    return list((data or {}).get("paths", []))


async def _taskservs(caller: Caller, _: dict[str, str]) -> list[str]:
    data = await caller.data_or_none("taskserv.list", {})
    return [t["name"] for t in (data or {}).get("available", [])]


async def _policies(caller: Caller, _: dict[str, str]) -> list[str]:
    data = await caller.data_or_none("config.export", {"path": KEEPER_POLICY})
    value = (data or {}).get("value") or {}
    return [rule["name"] for rule in value.get("rules", []) if isinstance(rule, dict)]


async def _ops(caller: Caller, _: dict[str, str]) -> list[str]:
    data = await caller.data_or_none("ops.list", {"status": "pending", "limit": 100})
    return [op["op_id"] for op in (data or {}).get("ops", [])]


async def _events(caller: Caller, _: dict[str, str]) -> list[str]:
    data = await caller.data_or_none("audit.query", {"limit": 100})
    return [r["event_id"] for r in (data or {}).get("records", [])]


async def _tools(caller: Caller, _: dict[str, str]) -> list[str]:
    data = await caller.data_or_none("tools.list", {})
    return [t["name"] for t in (data or {}).get("tools", [])]


SOURCES: dict[str, Source] = {
    "name": _servers,
    "server": _servers,
    "id": _workflows,
    "workflow_id": _workflows,
    "task": _tasks,
    "path": _config_paths,
    "taskserv": _taskservs,
    "policy": _policies,
    "op_id": _ops,
    "event": _events,
    "tool": _tools,
}
"""What each argument name completes to (prompts and templates use these names)."""


def completion_handler(caller: Caller) -> Callable[..., Awaitable[list[str]]]:
    """The server's one completion handler: the argument's candidates by prefix."""

    async def complete(
        ref: mcp_types.PromptReference | mcp_types.ResourceTemplateReference,
        argument: mcp_types.CompletionArgument,
        context: mcp_types.CompletionContext | None,
    ) -> list[str]:
        source = SOURCES.get(argument.name)
        if source is None:
            return []
        known: dict[str, Any] = dict((context.arguments or {}) if context else {})
        values = await source(caller, {k: str(v) for k, v in known.items()})
        return sorted(v for v in set(values) if v.startswith(argument.value))

    return complete
