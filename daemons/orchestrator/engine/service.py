"""`Orchestrator`: the engine behind the `OrchestratorAPI` seam, in process.

Every answer reflects durable state: reads wait for the journal batch in flight, so a
caller never sees a change that a crash could take back.
"""

from __future__ import annotations

import asyncio
import base64
import builtins
import math
from collections.abc import AsyncIterator, Mapping
from types import TracebackType
from typing import Any

from daemons.common.locks import OwnerLock
from daemons.common.settings import Settings
from daemons.common.state import StateStore
from daemons.orchestrator.actions import Action, load_actions
from daemons.orchestrator.engine.runtime import TaskRun, WorkflowRun
from daemons.orchestrator.engine.scheduler import CHECKPOINT_EVERY, DEFAULT_CONCURRENCY, Engine
from daemons.orchestrator.model import (
    TERMINAL_WORKFLOW_STATES,
    TaskState,
    WorkflowSpec,
    WorkflowState,
)
from daemons.orchestrator.protocol import ProgressCallback
from daemons.orchestrator.views import (
    Event,
    TaskLogs,
    TaskView,
    WorkflowPage,
    WorkflowView,
    task_logs,
    task_view,
    workflow_view,
)
from registry.errors import Conflict, InvalidInput, NotFound

_CAN_ROLL_BACK = frozenset({WorkflowState.SUCCEEDED, WorkflowState.FAILED})
_CAN_RETRY = frozenset({WorkflowState.FAILED, WorkflowState.CANCELLED, WorkflowState.ROLLED_BACK})


class Orchestrator:
    """The durable workflow engine's API. `start()` recovers; `stop()` shuts down cleanly."""

    def __init__(
        self,
        settings: Settings,
        *,
        actions: Mapping[str, Action] | None = None,
        state: StateStore | None = None,
        concurrency: int = DEFAULT_CONCURRENCY,
        checkpoint_every: int = CHECKPOINT_EVERY,
    ) -> None:
        self.settings = settings
        self.engine = Engine(
            settings,
            load_actions() if actions is None else actions,
            state=state,
            concurrency=concurrency,
            checkpoint_every=checkpoint_every,
        )
        self._lock = OwnerLock(
            settings.journal_dir,
            what="the orchestrator journal",
            hint="stop that orchestrator first or talk to it over its API",
        )

    # ---- lifecycle -----------------------------------------------------------------------

    async def start(self) -> None:
        """Take the journal directory (one engine per directory), replay it, resume."""
        self._lock.acquire()
        try:
            await self.engine.start()
        except BaseException:
            await self.engine.stop(grace_s=0)
            self._lock.release()
            raise

    async def stop(self, grace_s: float = 5.0) -> None:
        """End event streams, let running attempts finish within `grace_s`, flush, unlock."""
        self.engine.events.close()
        try:
            await self.engine.stop(grace_s)
        finally:
            self._lock.release()

    async def __aenter__(self) -> Orchestrator:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()

    def health(self) -> dict[str, Any]:
        """Readiness and load, for `/health` and `platform.health`."""
        engine = self.engine
        error = engine.committer.error
        active = sum(
            1 for wf in engine.workflows.values() if wf.state not in TERMINAL_WORKFLOW_STATES
        )
        return {
            "ready": self._lock.held and error is None,
            "detail": error.message if error else "journal ok",
            "workflows": len(engine.workflows),
            "active_workflows": active,
            "running_attempts": engine.running,
            "concurrency": engine.concurrency,
        }

    # ---- the API -------------------------------------------------------------------------

    async def submit(self, spec: WorkflowSpec, workflow_id: str | None = None) -> WorkflowView:
        wf = self.engine.submit(spec, workflow_id)
        await self.engine.committer.durable()
        return workflow_view(wf)

    async def get(self, workflow_id: str) -> WorkflowView:
        wf = self._workflow(workflow_id)
        await self.engine.committer.durable()
        return workflow_view(wf)

    async def list(
        self,
        state: WorkflowState | None = None,
        labels: Mapping[str, str] | None = None,
        name: str | None = None,
        limit: int = 50,
        cursor: str | None = None,
    ) -> WorkflowPage:
        if not 1 <= limit <= 1000:
            raise InvalidInput(f"limit must be between 1 and 1000, got {limit}")
        wanted = list((labels or {}).items())
        after = None if cursor is None else _decode_cursor(cursor)
        await self.engine.committer.durable()
        page: list[WorkflowView] = []
        more = False
        newest_first = sorted(self.engine.workflows.values(), key=_position, reverse=True)
        for wf in newest_first:
            if after is not None and _position(wf) >= after:
                continue
            if state is not None and wf.state is not state:
                continue
            if name is not None and wf.spec.name != name:
                continue
            carried = wf.spec.labels
            if wanted and any(carried.get(key) != value for key, value in wanted):
                continue
            if len(page) == limit:
                more = True
                break
            page.append(workflow_view(wf))
        last = self.engine.workflows[page[-1].id] if more else None
        return WorkflowPage(workflows=page, next_cursor=None if last is None else _cursor(last))

    async def cancel(self, workflow_id: str) -> WorkflowView:
        wf = self._workflow(workflow_id)
        if wf.state in TERMINAL_WORKFLOW_STATES:
            raise Conflict(
                f"workflow {workflow_id} already finished ({wf.state}); nothing to cancel",
                details={"workflow_id": workflow_id, "state": wf.state.value},
            )
        if wf.state is WorkflowState.ROLLING_BACK:
            raise Conflict(
                f"workflow {workflow_id} is rolling back; wait for the rollback to finish",
                details={"workflow_id": workflow_id, "state": wf.state.value},
            )
        self.engine.cancel(wf)
        return await self.get(workflow_id)

    async def rollback(self, workflow_id: str) -> WorkflowView:
        wf = self._workflow(workflow_id)
        if wf.state not in _CAN_ROLL_BACK:
            hint = (
                "cancel it instead (cancelling runs the compensations)"
                if wf.state in (WorkflowState.PENDING, WorkflowState.RUNNING)
                else "there is nothing left to undo"
            )
            raise Conflict(
                f"workflow {workflow_id} is {wf.state}; only succeeded or failed workflows "
                f"can be rolled back: {hint}",
                details={"workflow_id": workflow_id, "state": wf.state.value},
            )
        self.engine.rollback(wf, "rollback requested")
        return await self.get(workflow_id)

    async def retry(self, workflow_id: str) -> WorkflowView:
        wf = self._workflow(workflow_id)
        if wf.state not in _CAN_RETRY:
            raise Conflict(
                f"workflow {workflow_id} is {wf.state}; only failed, cancelled or rolled back "
                "workflows can be retried",
                details={"workflow_id": workflow_id, "state": wf.state.value},
            )
        self.engine.retry(wf)
        return await self.get(workflow_id)

    async def tasks(
        self, workflow_id: str, state: TaskState | None = None
    ) -> builtins.list[TaskView]:
        wf = self._workflow(workflow_id)
        await self.engine.committer.durable()
        return [task_view(wf, t) for t in wf.tasks if state is None or t.state is state]

    async def task(self, workflow_id: str, task_id: str) -> TaskView:
        wf, t = self._task(workflow_id, task_id)
        await self.engine.committer.durable()
        return task_view(wf, t)

    async def logs(self, workflow_id: str, task_id: str, tail: int | None = None) -> TaskLogs:
        if tail is not None and tail < 0:
            raise InvalidInput(f"tail must be 0 or more lines, got {tail}")
        wf, t = self._task(workflow_id, task_id)
        await self.engine.committer.durable()
        return task_logs(wf, t, tail)

    async def wait(
        self,
        workflow_id: str,
        timeout_s: float | None,
        on_progress: ProgressCallback | None = None,
    ) -> WorkflowView:
        wf = self._workflow(workflow_id)
        await self.engine.committer.durable()
        bus = self.engine.events
        # Subscribe before looking, so a change in between is not missed.
        stream = bus.subscribe(bus.last_seq, workflow_id)
        try:
            async with asyncio.timeout(timeout_s):
                if on_progress is None:
                    while wf.durable_state not in TERMINAL_WORKFLOW_STATES and not bus.closed:
                        await bus.changed()  # cheaper than building every event
                elif wf.durable_state not in TERMINAL_WORKFLOW_STATES:
                    async for event in stream:
                        await on_progress(event)
                        if event.kind == "workflow" and event.state in TERMINAL_WORKFLOW_STATES:
                            break
        except TimeoutError:
            pass  # not finished yet: the caller gets the current state
        finally:
            await stream.aclose()
        return workflow_view(wf)

    def events(
        self, since: int | None = None, workflow_id: str | None = None
    ) -> AsyncIterator[Event]:
        return self.engine.events.subscribe(since, workflow_id)

    # ---- helpers -------------------------------------------------------------------------

    def _workflow(self, workflow_id: str) -> WorkflowRun:
        wf = self.engine.workflows.get(workflow_id)
        if wf is None:
            raise NotFound(
                f"no workflow {workflow_id!r}; workflow.list shows the known ones",
                details={"workflow_id": workflow_id},
            )
        return wf

    def _task(self, workflow_id: str, task_id: str) -> tuple[WorkflowRun, TaskRun]:
        wf = self._workflow(workflow_id)
        t = wf.task(task_id)
        if t is None:
            raise NotFound(
                f"workflow {workflow_id} has no task {task_id!r}; task.list shows its tasks",
                details={"workflow_id": workflow_id, "task_id": task_id},
            )
        return wf, t


def _position(wf: WorkflowRun) -> tuple[float, str]:
    """Where a workflow sits in a listing: by creation time, then id (ids may be chosen)."""
    return (wf.created_at, wf.id)


def _cursor(wf: WorkflowRun) -> str:
    """An opaque cursor naming the position after which the next page starts: it stays
    valid while newer workflows arrive (they sort before it)."""
    raw = f"{wf.created_at!r}/{wf.id}".encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _decode_cursor(cursor: str) -> tuple[float, str]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        created, _, wf_id = raw.partition("/")
        position = (float(created), wf_id)
    except ValueError:
        position = None
    if position is None or not position[1] or not math.isfinite(position[0]):
        raise InvalidInput(
            f"cursor {cursor[:80]!r} is not one a listing handed out; pass the previous "
            "page's `next_cursor` as it is, or leave it out for the first page",
            details={"cursor": cursor[:80]},
        )
    return position
