"""Approvals asked of the user in place (MCP elicitation), issue #10 item 4.

When `ops.approve` or `ops.reject` is called by a client that may be asked
(`servers.mcp.asking`), the server shows the user the op
(what it is, its target, its plan's changes) and asks: approve, reject (with a reason),
or neither. The answer becomes an ordinary `ops.approve`/`ops.reject` call through the
pipeline, which still checks roles, four-eyes and expiry. Declined or cancelled, nothing
is decided and the call answers the op as it is. Other clients are served as before.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from fastmcp.server.dependencies import get_context
from fastmcp.tools import ToolResult

from servers.mcp.asking import may_ask
from servers.mcp.calls import Caller
from servers.mcp.server import RegistryTool, tool_result

ASKED = frozenset({"ops.approve", "ops.reject"})


@dataclass
class Answer:
    """What the user decides on the op."""

    decision: Literal["approve", "reject"]
    reason: str = ""


def summary(op: dict[str, Any]) -> str:
    """The op as the user should see it before deciding."""
    target = op.get("target") or {}
    labels = ", ".join(f"{k}={v}" for k, v in sorted((target.get("labels") or {}).items()))
    changes = "; ".join(
        f"{c.get('action')} {c.get('name') or c.get('kind') or ''}".strip()
        for c in op.get("changes") or []
    )
    return (
        f"Operation {op['op_id']}: {op['op_type']} on {target.get('name')}"
        f"{f' ({labels})' if labels else ''}, requested by {op['requester']}. "
        f"Keeper rule {op['rule']!r}; status {op['status']}. "
        f"Plan: {changes or 'no listed changes'}. Approve or reject it?"
    )


class ApprovalTool(RegistryTool):
    """`ops.approve`/`ops.reject`, asking the user in place where the client can."""

    async def run(self, arguments: dict[str, Any]) -> ToolResult:
        op_id = arguments.get("op_id")
        if not isinstance(op_id, str) or not may_ask():
            return await super().run(arguments)
        caller = Caller(self._registry, self._principal)
        shown = await caller.invoke("ops.get", {"op_id": op_id})
        if not shown.ok:  # the pipeline's own answer: not_found, forbidden…
            return await super().run(arguments)
        asked = await get_context().elicit(summary(shown.data), Answer)
        if asked.action != "accept":  # nothing decided: the op as it is
            op = shown.data
            shown.data = {k: op.get(k) for k in ("op_id", "status", "approvers", "workflow_id")}
            return tool_result(shown)
        answer = asked.data
        if answer.decision == "approve":
            decided = await caller.invoke("ops.approve", {"op_id": op_id})
        else:
            decided = await caller.invoke("ops.reject", {"op_id": op_id, "reason": answer.reason})
        return tool_result(decided)
