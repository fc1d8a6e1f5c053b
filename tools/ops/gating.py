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
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Literal

from daemons.common.authorization import CedarAuthorizer
from daemons.ops import OpPlan, OpRequest, OpsHandle, OpTarget, require_published
from daemons.ops.model import ControlCommand
from daemons.orchestrator.model import WorkflowSpec
from daemons.orchestrator.protocol import OrchestratorHandle
from daemons.orchestrator.views import WorkflowView
from registry import Target, ToolContext
from registry.errors import ApprovalRequired, NotFound, PlatformError, StillRunning, Unavailable
from registry.resources import Resources
from tools.plans import Plan, control_plan
from tools.workflow.access import SERVER_KINDS, Task, server_targets, workflow_target

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
    second_user: bool = False,
    state_digest: str = "",
) -> OpRequest:
    """The op for `spec`; `images` default to the workflow's action kinds; `state_digest`
    is its plan's (what an approval checks is still the state)."""
    kinds = images if images is not None else sorted({t.action for t in spec.tasks})
    plan = OpPlan(
        workflow=spec.model_dump(mode="json", exclude_none=True),
        changes=changes or [],
        state_digest=state_digest,
    )
    return OpRequest(
        type=op_type,
        target=target,
        images=kinds,
        risk=risk,
        params=params,
        plan=plan,
        second_user=second_user,
    )


def second_user(ctx: ToolContext, action: str, permission: str, targets: Iterable[Target]) -> bool:
    """Whether the caller may only ask for this op (Cedar allowed `action` on one of
    `targets` through an `@approval` permit alone): the keeper then holds it for an
    approver, whatever its rule says."""
    resources = ctx.resources
    if not resources.is_open(CedarAuthorizer):
        return False  # a bare registry decides by tool permission only
    authorizer = resources.peek(CedarAuthorizer)
    return authorizer.approval_required(ctx.principal, action, permission, targets)


async def spec_targets(spec: WorkflowSpec, wf_id: str | None, resources: Resources) -> list[Target]:
    """`spec` as Cedar sees a submission of it: the workflow (its action kinds,
    compensations included) and the servers its provisioning tasks act on."""
    tasks = [(t.action, t.params) for t in spec.tasks]
    tasks += [(t.compensate.action, t.compensate.params) for t in spec.tasks if t.compensate]
    target = workflow_target(wf_id or spec.name, spec.labels, (kind for kind, _ in tasks))
    return [target, *await server_targets(tasks, resources)]


async def op_target(spec: WorkflowSpec, resources: Resources) -> OpTarget:
    """What a policy sees a workflow act on: the servers its provisioning tasks name (with
    the labels they share and their provider), else the workflow itself, `local` (the
    orchestrator runs it here), labelled only with its `env` label when it has one."""
    tasks = [(t.action, t.params) for t in spec.tasks]
    tasks += [(t.compensate.action, t.compensate.params) for t in spec.tasks if t.compensate]
    return await _target(spec.name, spec.labels, tasks, resources)


async def _target(
    name: str, own_labels: Mapping[str, str], tasks: Sequence[Task], resources: Resources
) -> OpTarget:
    by_name: dict[str, Target] = {}
    for server in await server_targets(tasks, resources):
        by_name.setdefault(server.id, server)  # a task before its compensation
    servers = list(by_name.values())
    if not servers:
        env = own_labels.get("env")
        return OpTarget(name=name, provider="local", labels={"env": env} if env else {})
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


async def request_command(
    ctx: ToolContext, plan: Plan, risk: Literal["write", "destructive"]
) -> WorkflowView:
    """Gate a command on a recorded workflow (retry, rollback) as an op whose plan is
    `plan` (`control_plan`'s); its workflow once the controller ran the command."""
    command = ControlCommand.model_validate(plan.workflow)
    tasks: list[Task] = [(t.action, t.params) for t in command.tasks]
    tasks += [
        (str(t.compensate["action"]), t.compensate.get("params") or {})
        for t in command.tasks
        if t.compensate
    ]
    labels = plan.targets[0].labels
    kinds = sorted({kind for kind, _ in tasks})
    cedar = [
        workflow_target(command.id, labels, kinds),
        *await server_targets(tasks, ctx.resources),
    ]
    op = OpRequest(
        type=plan.op,
        target=await _target(command.id, labels, tasks, ctx.resources),
        images=kinds,
        risk=risk,
        params={"id": command.id},
        plan=OpPlan(workflow=plan.workflow, state_digest=plan.state_digest),
        second_user=second_user(ctx, plan.op, "workflow:write", cedar),
    )
    return await commanded(ctx, await request(ctx, op), op)


async def commanded(
    ctx: ToolContext, op_id: str, op: OpRequest, timeout_s: float = DISPATCH_TIMEOUT_S
) -> WorkflowView:
    """The recorded workflow of a published control op once the controller ran its
    command (the workflow moved from its planned state); the refusal as its error."""
    command = ControlCommand.model_validate(op.plan.workflow)
    api = (await ctx.resource(OrchestratorHandle)).api
    ledger = (await ctx.resource(OpsHandle)).ledger
    deadline = time.monotonic() + timeout_s
    while True:
        record = await ledger.get(op_id) if ledger is not None else None
        if record is not None and record.get("detail"):
            _refused(op_id, record)
        if record is not None or ledger is None:  # claimed: has the command taken effect?
            now = await control_plan(op.type, api, command.id)
            if now.state_digest != op.plan.state_digest:
                return await api.get(command.id)
        if time.monotonic() > deadline:
            raise StillRunning(
                f"{op_id} ({command.command} of {command.id}) is signed and queued, but no "
                f"controller has run it within {timeout_s:.0f} s; is the platform's "
                f"controller running? `prvng ops get --op-id {op_id}` follows it",
                details={"op_id": op_id, "workflow_id": command.id},
            )
        await asyncio.sleep(0.005)  # the controller dispatches within milliseconds


async def run_gated(ctx: ToolContext, op: OpRequest) -> WorkflowView:
    """Request `op` and answer its workflow as the controller started it."""
    return await dispatched(ctx, await request(ctx, op))
