"""How tools submit a workflow and, when asked, wait for it while reporting progress.

The orchestrator itself is a resource (`OrchestratorHandle`) that the assembly provides:
an engine in this process or the daemon's client, the tools cannot tell which."""

from __future__ import annotations

from pydantic import Field

from daemons.orchestrator.model import (
    TERMINAL_WORKFLOW_STATES,
    WORKFLOW_ID_PATTERN,
    WorkflowSpec,
)
from daemons.orchestrator.protocol import OrchestratorAPI, OrchestratorHandle
from daemons.orchestrator.views import Event, WorkflowView
from registry import StrictModel, ToolContext
from registry.model import Follow

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
        description="Choose the workflow id: submitting the same spec again is then a no-op",
    )
    wait: bool = Field(default=False, description="Return once it has finished (shows progress)")
    wait_timeout_s: float = Field(
        default=WAIT_TIMEOUT_S, gt=0, le=86_400, description="Longest wait, seconds"
    )


async def orchestrator(ctx: ToolContext) -> OrchestratorAPI:
    return (await ctx.resource(OrchestratorHandle)).api


async def finish(
    api: OrchestratorAPI, view: WorkflowView, ctx: ToolContext, wait: bool, timeout_s: float
) -> WorkflowView:
    """The view as submitted, or (with `wait`) once finished, reporting progress meanwhile."""
    if not wait or view.state in TERMINAL_WORKFLOW_STATES:
        return view
    done: set[str] = set()

    async def on_progress(event: Event) -> None:
        if event.task_id and event.state in {"succeeded", "failed", "skipped", "cancelled"}:
            done.add(event.task_id)
        message = f"{event.task_id or 'workflow'}: {event.state}"
        await ctx.progress(len(done), view.tasks_total, message)

    return await api.wait(view.id, timeout_s, on_progress)


async def submit(ctx: ToolContext, spec: WorkflowSpec, options: SubmitOptions) -> WorkflowView:
    api = await orchestrator(ctx)
    view = await api.submit(spec, options.id)
    return await finish(api, view, ctx, options.wait, options.wait_timeout_s)
