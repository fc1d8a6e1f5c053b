"""The gate every workflow-starting operation passes: tool → keeper (policy) → [approval]
→ signed → JetStream → controller → orchestrator.

`run_gated` builds the `OpRequest` (the concrete workflow is the plan), asks the keeper
through the `OpsHandle` resource and, once the op is published, waits until the
controller has dispatched it: the workflow id is the op id, so callers follow it as any
workflow. An op that needs approval answers `approval_required` with its id and plan.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any, Literal

from daemons.ops import OpPlan, OpRequest, OpsHandle, OpTarget, require_published
from daemons.orchestrator.model import WorkflowSpec
from daemons.orchestrator.protocol import OrchestratorAPI, OrchestratorHandle
from daemons.orchestrator.views import WorkflowView
from registry import ToolContext
from registry.errors import ApprovalRequired, NotFound, StillRunning

DISPATCH_TIMEOUT_S = 30.0


def op_request(
    op_type: str,
    spec: WorkflowSpec,
    *,
    target: OpTarget,
    params: dict[str, Any],
    risk: Literal["read", "write", "destructive"] = "write",
    images: list[str] | None = None,
    changes: list[dict[str, Any]] | None = None,
) -> OpRequest:
    """The op for `spec`; `images` default to the workflow's action kinds."""
    kinds = images if images is not None else sorted({t.action for t in spec.tasks})
    plan = OpPlan(workflow=spec.model_dump(mode="json", exclude_none=True), changes=changes or [])
    return OpRequest(type=op_type, target=target, images=kinds, risk=risk, params=params, plan=plan)


async def request(ctx: ToolContext, op: OpRequest) -> str:
    """Ask the keeper; the op id once the op is published (signed, in JetStream)."""
    handle = await ctx.resource(OpsHandle)
    decision = await handle.gate.request(op, ctx.principal, ctx.trace_id)
    try:
        return require_published(decision).op_id
    except ApprovalRequired as exc:
        exc.details["plan"] = op.plan.model_dump(mode="json")
        raise


async def dispatched(
    api: OrchestratorAPI, op_id: str, timeout_s: float = DISPATCH_TIMEOUT_S
) -> WorkflowView:
    """The workflow of a published op once the controller has submitted it."""
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            return await api.get(op_id)
        except NotFound:
            if time.monotonic() > deadline:
                raise StillRunning(
                    f"{op_id} is signed and queued, but no controller has started it within "
                    f"{timeout_s:.0f} s; is the platform's controller running? "
                    f"`prvng ops get --op-id {op_id}` follows it",
                    details={"op_id": op_id},
                ) from None
            await asyncio.sleep(0.005)  # the controller dispatches within milliseconds


async def run_gated(ctx: ToolContext, op: OpRequest) -> WorkflowView:
    """Request `op` and answer its workflow as the controller started it."""
    op_id = await request(ctx, op)
    api = (await ctx.resource(OrchestratorHandle)).api
    return await dispatched(api, op_id)
