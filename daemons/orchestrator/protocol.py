"""The seam tools program against: the in-process `Orchestrator` and the HTTP
`OrchestratorClient` both satisfy `OrchestratorAPI`, with the same errors
(`registry.errors`) and the same views."""

from __future__ import annotations

import builtins
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from daemons.common.health import ComponentStatus
from daemons.orchestrator.model import TaskState, WorkflowSpec, WorkflowState
from daemons.orchestrator.views import (
    LOG_PAGE_DEFAULT,
    Event,
    TaskLogs,
    TaskView,
    WorkflowPage,
    WorkflowView,
)

ProgressCallback = Callable[[Event], Awaitable[None]]
"""Called with each event of the workflow being waited for (MCP progress, CLI output)."""


class OrchestratorAPI(Protocol):
    async def submit(self, spec: WorkflowSpec, workflow_id: str | None = None) -> WorkflowView:
        """Check, durably record and start a workflow (`InvalidInput` for a bad spec).

        With `workflow_id`, submitting again is idempotent (same spec) or a `Conflict`."""
        ...

    async def check(self, spec: WorkflowSpec) -> None:
        """Check `spec` as `submit` would (`InvalidInput` when bad), recording nothing:
        a plan must not promise a workflow the orchestrator would refuse."""
        ...

    async def get(self, workflow_id: str) -> WorkflowView: ...

    async def list(
        self,
        state: WorkflowState | None = None,
        labels: Mapping[str, str] | None = None,
        name: str | None = None,
        limit: int = 50,
        cursor: str | None = None,
    ) -> WorkflowPage:
        """Newest first (by creation); only workflows carrying every one of `labels`."""
        ...

    async def cancel(self, workflow_id: str) -> WorkflowView: ...

    async def rollback(self, workflow_id: str) -> WorkflowView: ...

    async def retry(self, workflow_id: str) -> WorkflowView: ...

    async def tasks(
        self, workflow_id: str, state: TaskState | None = None
    ) -> builtins.list[TaskView]: ...

    async def task(self, workflow_id: str, task_id: str) -> TaskView: ...

    async def logs(
        self,
        workflow_id: str,
        task_id: str,
        tail: int | None = None,
        offset: int | None = None,
        limit: int = LOG_PAGE_DEFAULT,
    ) -> TaskLogs:
        """One page: `limit` lines from line `offset` (default: the oldest kept), or the
        last `tail` lines; `next_offset` continues."""
        ...

    async def wait(
        self,
        workflow_id: str,
        timeout_s: float | None,
        on_progress: ProgressCallback | None = None,
    ) -> WorkflowView:
        """The workflow once finished, or as it is when `timeout_s` seconds have passed."""
        ...

    def events(
        self, since: int | None = None, workflow_id: str | None = None
    ) -> AsyncIterator[Event]:
        """State changes after event `since` (default: from now on), as they become durable."""
        ...


@dataclass(frozen=True, slots=True)
class OrchestratorHandle:
    """The resource tools ask for: whichever `OrchestratorAPI` this process uses.

    (A concrete class, so it can key the registry's resources where a protocol cannot.)"""

    api: OrchestratorAPI
    location: str
    """`in process`, or the daemon's URL."""
    health: Callable[[], dict[str, Any]] | None = None
    """The in-process engine's readiness and load (None for a remote daemon)."""

    def status(self) -> ComponentStatus:
        if self.health is None:
            return ComponentStatus(True, self.location)
        health = self.health()
        if not health["ready"]:
            return ComponentStatus(False, str(health["detail"]))
        return ComponentStatus(
            True, f"{health['active_workflows']} active of {health['workflows']} workflows"
        )
