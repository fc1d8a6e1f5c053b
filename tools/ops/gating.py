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
from daemons.orchestrator.protocol import OrchestratorHandle
from daemons.orchestrator.views import WorkflowView
from registry import Target, ToolContext
from registry.errors import ApprovalRequired, NotFound, PlatformError, StillRunning, Unavailable
from registry.resources import Resources
from tools.workflow.access import SERVER_KINDS, server_targets

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


async def op_target(spec: WorkflowSpec, resources: Resources) -> OpTarget:
    """What a policy sees a workflow act on: the servers its provisioning tasks name (with
    the labels they share and their provider), else the workflow itself, `local` (the
    orchestrator runs it here), labelled only with its `env` label when it has one."""
    tasks = [(t.action, t.params) for t in spec.tasks]
    tasks += [(t.compensate.action, t.compensate.params) for t in spec.tasks if t.compensate]
    by_name: dict[str, Target] = {}
    for server in await server_targets(tasks, resources):
        by_name.setdefault(server.id, server)  # a task before its compensation
    servers = list(by_name.values())
    if not servers:
        env = spec.labels.get("env")
        return OpTarget(name=spec.name, provider="local", labels={"env": env} if env else {})
    shared = set(servers[0].labels).intersection(*(s.labels for s in servers[1:]))
    conflicting = {k for k, _ in set().union(*(s.labels for s in servers))} - {k for k, _ in shared}
    labels = dict(shared)
    if conflicting:  # servers that disagree on a label: no rule on it may match them all
        labels["mixed"] = ",".join(sorted(conflicting))
    providers = {str(p.get("provider") or "local") for k, p in tasks if k in SERVER_KINDS}
    return OpTarget(
        name=",".join(sorted(by_name))[:253],
        provider=providers.pop() if len(providers) == 1 else "mixed",
        labels=labels,
    )


async def request(ctx: ToolContext, op: OpRequest, op_id: str | None = None) -> str:
    """Ask the keeper; the op id once the op is published (signed, in JetStream)."""
    handle = await ctx.resource(OpsHandle)
    decision = await handle.gate.request(op, ctx.principal, ctx.trace_id, op_id)
    try:
        return require_published(decision).op_id
    except ApprovalRequired as exc:
        exc.details["plan"] = op.plan.model_dump(mode="json")
        raise


async def dispatched(
    ctx: ToolContext, op_id: str, timeout_s: float = DISPATCH_TIMEOUT_S
) -> WorkflowView:
    """The workflow of a published op once the controller has submitted it; the executor's
    refusal as the error it was (`unavailable`: the op stays queued and runs later)."""
    api = (await ctx.resource(OrchestratorHandle)).api
    ledger = (await ctx.resource(OpsHandle)).ledger
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            return await api.get(op_id)
        except NotFound:
            record = await ledger.get(op_id) if ledger is not None else None
            if record is not None and record.get("detail"):
                _refused(op_id, record)
            if time.monotonic() > deadline:
                raise StillRunning(
                    f"{op_id} is signed and queued, but no controller has started it within "
                    f"{timeout_s:.0f} s; is the platform's controller running? "
                    f"`prvng ops get --op-id {op_id}` follows it",
                    details={"op_id": op_id},
                ) from None
            await asyncio.sleep(0.005)  # the controller dispatches within milliseconds


def _refused(op_id: str, record: dict[str, Any]) -> None:
    details = {"op_id": op_id, "execution": record.get("state")}
    if record.get("state") == "dispatched":
        raise Unavailable(
            f"{record['detail']} ({op_id} stays queued and runs once the orchestrator "
            f"takes it; `prvng ops get --op-id {op_id}` follows it)",
            details=details,
        )
    error = PlatformError.from_dict(
        {"code": record.get("code") or "internal", "message": record["detail"]}
    )
    error.details.update(details)
    raise error


async def run_gated(ctx: ToolContext, op: OpRequest) -> WorkflowView:
    """Request `op` and answer its workflow as the controller started it."""
    return await dispatched(ctx, await request(ctx, op))
