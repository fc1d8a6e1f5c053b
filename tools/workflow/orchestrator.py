"""How tools reach the orchestrator: its HTTP API when it runs apart
(`PRVNG_ORCHESTRATOR_URL`), else an engine in this process (recovering its journal)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

from pydantic import Field

from daemons.common.settings import Settings
from daemons.common.state import StateStore
from daemons.orchestrator.model import (
    TERMINAL_WORKFLOW_STATES,
    WORKFLOW_ID_PATTERN,
    WorkflowSpec,
)
from daemons.orchestrator.protocol import OrchestratorAPI
from daemons.orchestrator.views import Event, WorkflowView
from registry import Resources, StrictModel, ToolContext

WAIT_TIMEOUT_S = 300.0
WORKFLOW_VOLATILE = ("created_at", "updated_at", "finished_at")
"""A workflow view's timestamps: they differ between runs, so contracts ignore them."""


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


@dataclass(frozen=True, slots=True)
class OrchestratorHandle:
    """The registry resource holding whichever `OrchestratorAPI` this process uses."""

    api: OrchestratorAPI
    location: str
    """`in process`, or the daemon's URL."""
    health: Callable[[], dict[str, Any]] | None = None
    """The in-process engine's readiness and load (None for a remote daemon)."""

    def status(self) -> tuple[bool, str]:
        """(ready, detail) as `/health` and `platform.health` show it."""
        if self.health is None:
            return True, self.location
        health = self.health()
        if not health["ready"]:
            return False, str(health["detail"])
        return True, f"{health['active_workflows']} active of {health['workflows']} workflows"


@asynccontextmanager
async def open_orchestrator(
    settings: Settings, resources: Resources
) -> AsyncIterator[OrchestratorHandle]:
    if settings.orchestrator_url:
        from daemons.orchestrator.serving.client import OrchestratorClient

        async with OrchestratorClient.from_settings(settings, settings.orchestrator_url) as client:
            yield OrchestratorHandle(client, settings.orchestrator_url)
        return
    from daemons.orchestrator.engine.service import Orchestrator

    async with Orchestrator(settings, state=await resources.get(StateStore)) as engine:
        yield OrchestratorHandle(engine, "in process", engine.health)


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
