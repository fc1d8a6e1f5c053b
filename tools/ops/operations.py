"""`ops.list|get|request|approve|reject|cancel`: the ops plane's decisions, through the
keeper (`OpsHandle`). The keeper enforces four-eyes, approver roles and expiry; Cedar
decides who may call each tool (approve/reject: `approver` and `admin`)."""

from __future__ import annotations

import asyncio
from typing import Any, Literal

from pydantic import Field, ValidationError

from daemons.ops import OpDecision, OpInfo, OpsHandle, OpStatus, OpTarget
from daemons.ops.model import OP_ID_PATTERN, OpRequest, control_command
from daemons.orchestrator.model import WorkflowSpec
from registry import (
    Call,
    Conflict,
    ContractCase,
    InvalidInput,
    RestAlias,
    Risk,
    StrictModel,
    Target,
    ToolContext,
    ToolSpec,
)
from registry.resources import Resources
from tools.ops.gating import commanded, dispatched, op_request, request, second_user, spec_targets
from tools.plans import state_digest_now
from tools.workflow.access import owned

OP_ID = Field(pattern=OP_ID_PATTERN, description="The op id (`op-<32 hex>`, also its workflow id)")


class ListInput(StrictModel):
    status: OpStatus | None = None
    type: str | None = Field(default=None, max_length=64, description="Op type (a tool name)")
    requester: str | None = Field(default=None, max_length=128)
    limit: int = Field(default=50, ge=1, le=500)
    cursor: str | None = Field(
        default=None, pattern=r"^[0-9]{1,9}$", description="`next_cursor` of the previous page"
    )


class OpSummary(StrictModel):
    op_id: str
    type: str
    status: str
    requester: str
    rule: str
    created_at: str


class OpPage(StrictModel):
    ops: list[OpSummary]
    next_cursor: str | None = None


class OpDecided(StrictModel):
    """What an approval, rejection, cancel or request left the op at."""

    op_id: str
    status: str
    approvers: list[str]
    reason: str = ""
    workflow_id: str | None = None


class IdInput(StrictModel):
    op_id: str = OP_ID


class RejectInput(StrictModel):
    op_id: str = OP_ID
    reason: str = Field(default="", max_length=1000)


class OpView(OpInfo):
    """An op with the digests its token binds and how its execution went (the controller's
    ledger). Its plan's workflow stays out: its task params are for the workflow's readers."""

    params_digest: str
    plan_digest: str
    """What an approval signs: the digest of the plan's changes and exact workflow (the
    `plan` of the requester's `approval_required` answer hashes to it)."""
    state_digest: str = ""
    """The state the plan was computed on; approving is refused once it moved."""
    execution: str | None = None
    """The ledger's state: dispatched, succeeded, failed, dead_lettered (null before)."""
    execution_detail: str = ""
    workflow_id: str | None = None
    """Set once dispatched: the op id (a retry's or rollback's: the workflow it commands)."""


class RequestInput(StrictModel):
    type: str = Field(min_length=1, max_length=64, pattern=r"^[a-z][a-z0-9_.-]*$")
    target: OpTarget
    risk: Literal["write", "destructive"] = "write"
    params: dict[str, Any] = Field(default_factory=dict)
    workflow: dict[str, Any] = Field(description="A workflow spec (as workflow.submit's)")
    """Checked as a `WorkflowSpec` by the handler: its schema would double the listing."""

    def spec(self) -> WorkflowSpec:
        try:
            return WorkflowSpec.model_validate(self.workflow)
        except ValidationError as exc:
            raise InvalidInput(
                f"workflow: {exc.errors()[0]['msg']} at {exc.errors()[0]['loc']}; "
                "`prvng workflow submit --help` shows the spec",
                details={"errors": exc.errors(include_url=False, include_context=False)},
            ) from None


async def _handle(ctx: ToolContext) -> OpsHandle:
    return await ctx.resource(OpsHandle)


async def view(handle: OpsHandle, op_id: str) -> OpView:
    info = await handle.gate.describe(op_id)
    op = await handle.gate.op(op_id)
    params_digest, plan_digest = await asyncio.to_thread(
        lambda: (op.params_digest(), op.plan_digest())  # a big plan: off the event loop
    )
    bound = {
        **info.model_dump(),
        "params_digest": params_digest,
        "plan_digest": plan_digest,
        "state_digest": op.plan.state_digest,
    }
    record = await handle.ledger.get(op_id) if handle.ledger is not None else None
    if record is None:
        return OpView(**bound)
    command = control_command(op.plan)
    return OpView(
        **bound,
        execution=record.get("state"),
        execution_detail=record.get("detail", ""),
        workflow_id=op_id if command is None else command.id,
    )


async def list_ops(args: ListInput, ctx: ToolContext) -> OpPage:
    handle = await _handle(ctx)
    start = int(args.cursor or 0)
    found = await handle.gate.list(
        status=args.status,
        op_type=args.type,
        requester=args.requester,
        limit=args.limit + 1,
        start=start,
    )
    more = len(found) > args.limit
    ops = [
        OpSummary(
            op_id=op.op_id,
            type=op.op_type,
            status=op.status.value,
            requester=op.requester,
            rule=op.rule,
            created_at=op.created_at,
        )
        for op in found[: args.limit]
    ]
    return OpPage(ops=ops, next_cursor=str(start + args.limit) if more else None)


async def get_op(args: IdInput, ctx: ToolContext) -> OpView:
    return await view(await _handle(ctx), args.op_id)


def _decided(decision: OpDecision, workflow_id: str | None = None) -> OpDecided:
    return OpDecided(
        op_id=decision.op_id,
        status=decision.status.value,
        approvers=decision.approvers,
        reason=decision.reason,
        workflow_id=workflow_id,
    )


async def _still_planned(handle: OpsHandle, op: OpRequest, op_id: str, ctx: ToolContext) -> None:
    """Refuse (audited) approving an op whose plan was computed on a state that changed
    since: what the approver would sign is no longer what would happen."""
    planned = op.plan.state_digest
    if not planned or await state_digest_now(op.type, op.plan.workflow, ctx) == planned:
        return
    command = f"prvng {op.type.replace('.', ' ')} ... --plan"
    reason = f"the state {op_id} was planned on changed since the plan"
    await handle.gate.refuse_stale(op_id, ctx.principal, reason, ctx.trace_id)
    raise Conflict(
        f"{reason}, so its plan no longer says what would happen; nothing ran and it stays "
        f"unapproved: re-plan (`{command}`), request it again, and cancel this one "
        f"(`prvng ops cancel --op-id {op_id}`)",
        details={"op_id": op_id, "state_digest": planned},
    )


async def approve_op(args: IdInput, ctx: ToolContext) -> OpDecided:
    handle = await _handle(ctx)
    op = await handle.gate.op(args.op_id)
    if (await handle.gate.get(args.op_id)).status is OpStatus.PENDING:
        await _still_planned(handle, op, args.op_id, ctx)
    # (Otherwise the keeper says why it cannot be approved; an op that ran moved the state.)
    decision = await handle.gate.approve(args.op_id, ctx.principal, ctx.trace_id)
    if decision.status is not OpStatus.PUBLISHED:
        return _decided(decision)  # more approvers to come
    if control_command(op.plan) is not None:  # a retry or rollback of a recorded workflow
        view = await commanded(ctx, decision.op_id, op)
        return _decided(decision, view.id)
    await dispatched(ctx, decision.op_id)  # answered once its workflow runs
    return _decided(decision, decision.op_id)


async def reject_op(args: RejectInput, ctx: ToolContext) -> OpDecided:
    handle = await _handle(ctx)
    return _decided(await handle.gate.reject(args.op_id, ctx.principal, args.reason, ctx.trace_id))


async def cancel_op(args: IdInput, ctx: ToolContext) -> OpDecided:
    handle = await _handle(ctx)
    return _decided(await handle.gate.cancel(args.op_id, ctx.principal, ctx.trace_id))


async def request_op(args: RequestInput, ctx: ToolContext) -> OpDecided:
    spec = args.spec()
    spec = spec.model_copy(update={"labels": owned(spec.labels, ctx.principal.id)})
    held = second_user(
        ctx, "ops.request", "ops:write", await spec_targets(spec, None, ctx.resources)
    )
    op = op_request(
        args.type, spec, target=args.target, params=args.params, risk=args.risk, second_user=held
    )
    op_id = await request(ctx, op)
    await dispatched(ctx, op_id)
    return _decided(await (await _handle(ctx)).gate.get(op_id), op_id)


async def _requested(args: RequestInput, resources: Resources) -> list[Target]:
    """As `workflow.submit` would be authorized: the workflow's action kinds and the
    servers its provisioning tasks act on."""
    return await spec_targets(args.spec(), None, resources)


_UNKNOWN = "op-" + "0" * 32
_VOLATILE = ("created_at", "expires_at", "token", "trace_id", "op_id", "workflow_id")
_DEV_WORKFLOW = {"name": "c-ops", "tasks": [{"id": "a", "action": "noop"}]}
_DEV_TARGET = {"name": "c-ops", "labels": {"env": "dev"}}

TOOLS = [
    ToolSpec(
        name="ops.list",
        summary="List ops (newest first) with their decision and status",
        input_model=ListInput,
        output_model=OpPage,
        handler=list_ops,
        permission="ops:read",
        idempotent=True,
        rest=RestAlias("GET", "/v1/ops"),
        tags=("ops",),
        volatile_paths=tuple(f"ops.*.{p}" for p in _VOLATILE),
        cases=(ContractCase("pending only", {"status": "pending", "type": "c.none"}),),
    ),
    ToolSpec(
        name="ops.get",
        summary="One op: decision, approvals, plan changes and digests, token, execution",
        input_model=IdInput,
        output_model=OpView,
        handler=get_op,
        permission="ops:read",
        idempotent=True,
        rest=RestAlias("GET", "/v1/ops/{op_id}"),
        tags=("ops",),
        volatile_paths=("created_at", "expires_at", "token", "trace_id", "execution"),
        cases=(
            ContractCase(
                "a run op's digests",
                {"op_id": "c-opget"},
                setup=(Call("workflow.submit", {**_DEV_WORKFLOW, "id": "c-opget", "wait": True}),),
            ),
            ContractCase("unknown", {"op_id": _UNKNOWN}, expect="not_found"),
            ContractCase("bad id", {"op_id": "Not an id!"}, expect="invalid_input"),
        ),
    ),
    ToolSpec(
        name="ops.request",
        summary="Ask the keeper to run a workflow as an op of a type on a target",
        input_model=RequestInput,
        output_model=OpDecided,
        handler=request_op,
        permission="ops:write",
        risk=Risk.WRITE,
        rest=RestAlias("POST", "/v1/ops"),
        tags=("ops",),
        targets=_requested,
        volatile_paths=("op_id", "workflow_id"),
        cases=(
            ContractCase(
                "dev runs", {"type": "c.ops", "target": _DEV_TARGET, "workflow": _DEV_WORKFLOW}
            ),
        ),
    ),
    ToolSpec(
        name="ops.approve",
        summary="Approve a pending op (not your own: four-eyes)",
        input_model=IdInput,
        output_model=OpDecided,
        handler=approve_op,
        permission="ops:admin",
        risk=Risk.WRITE,
        rest=RestAlias("POST", "/v1/ops/{op_id}/approve"),
        tags=("ops",),
        cases=(ContractCase("unknown", {"op_id": _UNKNOWN}, expect="not_found"),),
    ),
    ToolSpec(
        name="ops.reject",
        summary="Reject a pending op, with a reason",
        input_model=RejectInput,
        output_model=OpDecided,
        handler=reject_op,
        permission="ops:admin",
        risk=Risk.WRITE,
        rest=RestAlias("POST", "/v1/ops/{op_id}/reject"),
        tags=("ops",),
        cases=(ContractCase("unknown", {"op_id": _UNKNOWN}, expect="not_found"),),
    ),
    ToolSpec(
        name="ops.cancel",
        summary="Withdraw a pending op (its requester or an admin)",
        input_model=IdInput,
        output_model=OpDecided,
        handler=cancel_op,
        permission="ops:write",
        risk=Risk.WRITE,
        rest=RestAlias("POST", "/v1/ops/{op_id}/cancel"),
        tags=("ops",),
        cases=(ContractCase("unknown", {"op_id": _UNKNOWN}, expect="not_found"),),
    ),
]
