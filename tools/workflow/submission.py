"""How tools submit a workflow and, when asked, wait for it while reporting progress.

The orchestrator itself is a resource (`OrchestratorHandle`) that the assembly provides:
an engine in this process or the daemon's client, the tools cannot tell which. Every
submission passes the ops gate (`tools.ops.gating`): nothing runs unsigned."""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Collection
from typing import Any, Literal

from pydantic import Field

from daemons.orchestrator.model import (
    TERMINAL_WORKFLOW_STATES,
    WORKFLOW_ID_PATTERN,
    TaskState,
    WorkflowSpec,
    WorkflowState,
)
from daemons.orchestrator.protocol import OrchestratorAPI, OrchestratorHandle
from daemons.orchestrator.views import Event, TaskView, WorkflowView
from registry import StillRunning, StrictModel, ToolContext, Unavailable, WorkflowFailed
from registry.canonical import sha256_digest
from registry.model import Follow
from tools.ops.gating import (
    dispatched,
    op_request,
    op_target,
    request,
    second_user,
    spec_targets,
)
from tools.plans import provisioning_changes
from tools.workflow.access import owned

WAIT_TIMEOUT_S = 300.0
WORKFLOW_VOLATILE = ("created_at", "updated_at", "finished_at")
"""A workflow view's timestamps: they differ between runs, so contracts ignore them."""


FOLLOW_WORKFLOW = Follow(stream="workflow.events")
"""A tool that starts (or acts on) a workflow and, with `wait`, blocks until it settles."""
FOLLOW_WAIT = Follow(stream="workflow.events", when=None)
"""`workflow.wait`: always blocks on the workflow named by `id`."""


class SubmitOptions(StrictModel):
    """How a tool that starts a workflow submits it (shared by every such tool)."""

    id: str | None = Field(
        default=None,
        pattern=WORKFLOW_ID_PATTERN,
        description="Workflow id; the same spec again is then a no-op",
    )
    wait: bool = Field(default=False, description="Return once finished, showing progress")
    wait_timeout_s: float = Field(
        default=WAIT_TIMEOUT_S, gt=0, le=86_400, description="Longest wait, seconds"
    )
    plan: bool = False  # listed bare: the name says it (docs/plans.md), the budget is tight


def op_params(args: SubmitOptions, *, exclude: Collection[str] = ()) -> dict[str, Any]:
    """A tool's input as its op's params: without how the caller waits (`SubmitOptions`)."""
    return args.model_dump(mode="json", exclude={*SubmitOptions.model_fields, *exclude})


async def orchestrator(ctx: ToolContext) -> OrchestratorAPI:
    return (await ctx.resource(OrchestratorHandle)).api


_SETTLED_TASKS = frozenset(
    {TaskState.SUCCEEDED, TaskState.FAILED, TaskState.SKIPPED, TaskState.CANCELLED}
)
SUCCEEDED = frozenset({WorkflowState.SUCCEEDED})
"""What a call that runs a workflow (submit, create, wait, retry) waits for."""


def _failed_task(task: TaskView) -> dict[str, Any]:
    comp = task.compensation
    comp_failed = comp is not None and comp.state is TaskState.FAILED
    return {
        "id": task.id,
        "action": task.action,
        "state": task.state.value,
        "attempts": task.attempts,
        "error": task.error,
        "compensation_error": comp.error if comp is not None and comp_failed else None,
    }


async def _outcome(
    api: OrchestratorAPI, view: WorkflowView, goal: Collection[WorkflowState]
) -> WorkflowView:
    """The view when the workflow reached `goal`, else the error that says where it is."""
    if view.state in goal:
        return view
    details: dict[str, Any] = view.model_dump(mode="json")
    if view.state not in TERMINAL_WORKFLOW_STATES:
        raise StillRunning(
            f"workflow {view.id} is still {view.state} (the wait ran out); "
            f"`prvng workflow wait --id {view.id}` waits again",
            details=details,
        )
    failed = [
        _failed_task(t)
        for t in await api.tasks(view.id)
        if t.state is TaskState.FAILED
        or (t.compensation is not None and t.compensation.state is TaskState.FAILED)
    ]
    details["failed_tasks"] = failed
    names = ", ".join(t["id"] for t in failed) or "none"
    raise WorkflowFailed(
        f"workflow {view.id} ended {view.state}: {view.reason or 'no reason recorded'} "
        f"(failed tasks: {names}); `prvng task list --workflow-id {view.id}` shows every task",
        details=details,
    )


async def finish(
    api: OrchestratorAPI,
    view: WorkflowView,
    ctx: ToolContext,
    wait: bool,
    timeout_s: float,
    goal: Collection[WorkflowState] = SUCCEEDED,
) -> WorkflowView:
    """The view as submitted, or (with `wait`) once it reached `goal`, reporting progress
    meanwhile; `WorkflowFailed` when it settled elsewhere, `StillRunning` when the wait
    ran out. A call that did not wait answers the view whatever its state."""
    if not wait:
        return view
    if view.state in TERMINAL_WORKFLOW_STATES:  # done before the wait began: say so once
        await ctx.progress(_settled(view), view.tasks_total, f"workflow: {view.state}")
        return await _outcome(api, view, goal)
    done: set[str] = set()

    async def on_progress(event: Event) -> None:
        if event.task_id and event.state in {"succeeded", "failed", "skipped", "cancelled"}:
            done.add(event.task_id)
        message = f"{event.task_id or 'workflow'}: {event.state}"
        await ctx.progress(len(done), view.tasks_total, message)

    final = await api.wait(view.id, timeout_s, on_progress)
    if (settled := _settled(final)) > len(done):  # tasks that settled before the wait began
        await ctx.progress(settled, final.tasks_total, f"workflow: {final.state}")
    return await _outcome(api, final, goal)


def _settled(view: WorkflowView) -> int:
    """How many of the workflow's tasks have reached an end."""
    return sum(n for state, n in view.task_counts.items() if state in _SETTLED_TASKS)


async def submit(
    ctx: ToolContext,
    spec: WorkflowSpec,
    options: SubmitOptions,
    *,
    op_type: str,
    params: dict[str, Any],
    risk: Literal["write", "destructive"] = "write",
) -> WorkflowView:
    """Submit `spec` as the caller's (its owner label names them) through the ops plane,
    then `finish` it: the keeper decides on op `op_type` (`params`: the tool's input, the
    plan: `spec`), the controller runs what was signed; the workflow id is the op id (or
    the caller's chosen `id`)."""
    handle = await ctx.resource(OrchestratorHandle)
    if not (status := handle.status()).ready:  # refused now rather than queued for later
        raise Unavailable(f"the orchestrator takes no new work: {status.detail}")
    api = handle.api
    spec = spec.model_copy(update={"labels": owned(spec.labels, ctx.principal.id)})
    target = await op_target(spec, ctx.resources)
    changes, state = await provisioning_changes(spec, ctx)  # the plan's, against the inventory
    listed = [change.model_dump(mode="json") for change in changes]
    permission = f"{op_type.split('.')[0]}:write"  # the act's, as the tool's own
    held = second_user(
        ctx, op_type, permission, await spec_targets(spec, options.id, ctx.resources)
    )
    # Off the event loop: the plan is the whole workflow (a spec may be over 1 MiB).
    build = functools.partial(
        op_request,
        op_type,
        spec,
        target=target,
        params=params,
        risk=risk,
        changes=listed,
        second_user=held,
        state_digest=sha256_digest(state),
    )
    op = await asyncio.to_thread(build)
    view = await dispatched(ctx, await request(ctx, op, options.id))
    return await finish(api, view, ctx, options.wait, options.wait_timeout_s)
