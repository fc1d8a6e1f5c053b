"""`Orchestrator`: the engine behind the `OrchestratorAPI` seam, in process.

Every answer reflects durable state: reads wait for the journal batch in flight, so a
caller never sees a change that a crash could take back, and a command (submit, cancel,
rollback, retry) answers once its record is on disk. In a journal outage (a full disk)
commands answer `unavailable` at once and reads answer from memory (see `durability.commit`).
"""

from __future__ import annotations

import asyncio
import base64
import builtins
import contextlib
import math
import operator
import time
from collections.abc import AsyncIterator, Mapping
from datetime import datetime
from types import TracebackType
from typing import Any

from daemons.common.locks import OwnerLock
from daemons.common.settings import Settings
from daemons.common.state import StateStore
from daemons.orchestrator.actions import Action, load_actions
from daemons.orchestrator.actions.task_user import task_user
from daemons.orchestrator.durability.commit import RETRY_S
from daemons.orchestrator.durability.disk import OS_DISK, Disk
from daemons.orchestrator.engine.graph import prepare
from daemons.orchestrator.engine.ids import check_id, new_workflow_id
from daemons.orchestrator.engine.runtime import Archived, TaskRun, WorkflowRun
from daemons.orchestrator.engine.scheduler import CHECKPOINT_EVERY, DEFAULT_CONCURRENCY, Engine
from daemons.orchestrator.model import (
    TERMINAL_WORKFLOW_STATES,
    TaskState,
    WorkflowSpec,
    WorkflowState,
)
from daemons.orchestrator.protocol import ProgressCallback
from daemons.orchestrator.views import (
    LOG_PAGE_DEFAULT,
    Event,
    TaskLogs,
    TaskView,
    WorkflowPage,
    WorkflowView,
    check_log_page,
    task_logs,
    task_view,
    workflow_view,
)
from registry.errors import Conflict, InvalidInput, NotFound, Unavailable

_INLINE_TASKS = 16
"""Specs with up to this many tasks are checked on the loop: quicker than a thread hop."""
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
        disk: Disk = OS_DISK,
        retry_s: tuple[float, float] = RETRY_S,
    ) -> None:
        self.settings = settings
        self.engine = Engine(
            settings,
            load_actions() if actions is None else actions,
            state=state,
            concurrency=concurrency,
            checkpoint_every=checkpoint_every,
            disk=disk,
            retry_s=retry_s,
        )
        self._lock = OwnerLock(
            settings.journal_dir,
            what="the orchestrator journal",
            hint="stop that orchestrator first or talk to it over its API",
        )

    # ---- lifecycle -----------------------------------------------------------------------

    async def start(self) -> None:
        """Check who tasks run as, take the journal directory (one engine per directory),
        replay it, resume."""
        task_user(self.settings)  # a missing PRVNG_TASK_USER stops the start, not a task
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
        outage = engine.committer.outage
        active = sum(
            1 for wf in engine.workflows.values() if wf.state not in TERMINAL_WORKFLOW_STATES
        )
        return {
            "ready": self._lock.held and outage is None,
            "detail": f"journal outage: {outage.details['reason']}" if outage else "journal ok",
            "workflows": len(engine.workflows) + len(engine.archived),
            "active_workflows": active,
            "running_attempts": engine.running,
            "concurrency": engine.concurrency,
        }

    # ---- the API -------------------------------------------------------------------------

    async def submit(self, spec: WorkflowSpec, workflow_id: str | None = None) -> WorkflowView:
        # Comparing and checking a big spec takes a while: in a worker thread, not the loop
        # (a small one is quicker checked here than handed to a thread and back).
        engine = self.engine
        engine.refuse_in_outage()
        if workflow_id is not None:
            check_id(workflow_id)
            if workflow_id in engine.archived:
                await engine.load_archived(workflow_id)
            known = engine.workflows.get(workflow_id)
            if known is not None:
                same = await asyncio.to_thread(operator.eq, known.spec, spec)
                wf = engine.existing(workflow_id, spec, same)
                if wf is not None:
                    await engine.committer.durable()
                    return workflow_view(wf)
        new_id = workflow_id or new_workflow_id()
        if len(spec.tasks) <= _INLINE_TASKS:
            draft, line = engine.draft(spec, new_id)
        else:
            draft, line = await asyncio.to_thread(engine.draft, spec, new_id)
        wf = engine.submit(draft, line, chosen=workflow_id is not None)
        try:
            await engine.committer.durable()
        except Unavailable:
            if engine.workflows.get(wf.id) is not wf:
                raise  # forgotten: as if never submitted, so submitting again is safe
            # its own journal was written before the batch failed: it is durable
        return workflow_view(wf)

    async def check(self, spec: WorkflowSpec) -> None:
        await asyncio.to_thread(prepare, spec, self.engine.actions)

    async def get(self, workflow_id: str) -> WorkflowView:
        archived = self.engine.archived.get(workflow_id)
        if archived is not None:
            return archived.view
        wf = self._workflow(workflow_id)
        await self._settled()
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
        await self._settled()
        page: list[WorkflowView] = []
        more = False
        last: tuple[int, str] | None = None
        engine = self.engine
        positions = [(_position(wf), wf_id) for wf_id, wf in engine.workflows.items()]
        positions += [(_archived_position(a), wf_id) for wf_id, a in engine.archived.items()]
        for position, wf_id in sorted(positions, reverse=True):
            if after is not None and position >= after:
                continue
            wf = engine.workflows.get(wf_id)
            if wf is None:
                view = engine.archived[wf_id].view
                wf_state, wf_name, carried = view.state, view.name, view.labels
            else:
                wf_state, wf_name, carried = wf.state, wf.spec.name, wf.spec.labels
            if state is not None and wf_state is not state:
                continue
            if name is not None and wf_name != name:
                continue
            if wanted and any(carried.get(key) != value for key, value in wanted):
                continue
            if len(page) == limit:
                more = True
                break
            page.append(engine.archived[wf_id].view if wf is None else workflow_view(wf))
            last = position
        return WorkflowPage(workflows=page, next_cursor=_cursor(last) if more and last else None)

    async def cancel(self, workflow_id: str) -> WorkflowView:
        self.engine.refuse_in_outage()
        wf = await self._loaded(workflow_id)
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
        return await self._acknowledged(wf)

    async def rollback(self, workflow_id: str) -> WorkflowView:
        self.engine.refuse_in_outage()
        wf = await self._loaded(workflow_id)
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
        return await self._acknowledged(wf)

    async def retry(self, workflow_id: str) -> WorkflowView:
        self.engine.refuse_in_outage()
        wf = await self._loaded(workflow_id)
        if wf.state not in _CAN_RETRY:
            raise Conflict(
                f"workflow {workflow_id} is {wf.state}; only failed, cancelled or rolled back "
                "workflows can be retried",
                details={"workflow_id": workflow_id, "state": wf.state.value},
            )
        self.engine.retry(wf)
        return await self._acknowledged(wf)

    async def tasks(
        self, workflow_id: str, state: TaskState | None = None
    ) -> builtins.list[TaskView]:
        wf = await self._loaded(workflow_id)
        await self._settled()
        return [task_view(wf, t) for t in wf.tasks if state is None or t.state is state]

    async def task(self, workflow_id: str, task_id: str) -> TaskView:
        wf, t = await self._task(workflow_id, task_id)
        await self._settled()
        return task_view(wf, t)

    async def logs(
        self,
        workflow_id: str,
        task_id: str,
        tail: int | None = None,
        offset: int | None = None,
        limit: int = LOG_PAGE_DEFAULT,
    ) -> TaskLogs:
        check_log_page(tail, offset, limit)
        wf, t = await self._task(workflow_id, task_id)
        await self._settled()
        return task_logs(wf, t, offset, limit, tail)

    async def wait(
        self,
        workflow_id: str,
        timeout_s: float | None,
        on_progress: ProgressCallback | None = None,
    ) -> WorkflowView:
        archived = self.engine.archived.get(workflow_id)
        if archived is not None:
            return archived.view  # finished long ago
        wf = self._workflow(workflow_id)
        await self._settled()
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

    async def prune(self, now: float | None = None) -> builtins.list[str]:
        """Apply retention now (as of `now`); the ids of the workflows deleted, durably."""
        removed = self.engine.prune(time.time() if now is None else now)
        await self.engine.committer.durable()
        return removed

    # ---- helpers -------------------------------------------------------------------------

    async def _settled(self) -> None:
        """Before a read: wait for the batch in flight, so the answer is durable; in an
        outage answer at once, from memory (progress kept there until the disk has room)."""
        with contextlib.suppress(Unavailable):
            await self.engine.committer.durable()

    async def _acknowledged(self, wf: WorkflowRun) -> WorkflowView:
        """After a command: its record is on disk (`unavailable` if the disk refused it;
        it stays queued, so it takes effect once a write succeeds)."""
        await self.engine.committer.durable()
        return workflow_view(wf)

    async def _loaded(self, workflow_id: str) -> WorkflowRun:
        """The workflow in full, loading a finished one known by its summary."""
        if workflow_id in self.engine.archived:
            await self.engine.load_archived(workflow_id)
        return self._workflow(workflow_id)

    def _workflow(self, workflow_id: str) -> WorkflowRun:
        wf = self.engine.workflows.get(workflow_id)
        if wf is None:
            raise NotFound(
                f"no workflow {workflow_id!r}; workflow.list shows the known ones",
                details={"workflow_id": workflow_id},
            )
        return wf

    async def _task(self, workflow_id: str, task_id: str) -> tuple[WorkflowRun, TaskRun]:
        wf = await self._loaded(workflow_id)
        t = wf.task(task_id)
        if t is None:
            raise NotFound(
                f"workflow {workflow_id} has no task {task_id!r}; task.list shows its tasks",
                details={"workflow_id": workflow_id, "task_id": task_id},
            )
        return wf, t


def _position(wf: WorkflowRun) -> tuple[int, str]:
    """Where a workflow sits in a listing: by creation time (in the milliseconds its view
    shows, so a loaded and a summarised workflow compare alike), then id."""
    return (math.floor(wf.created_at * 1000), wf.id)


def _archived_position(archived: Archived) -> tuple[int, str]:
    created = datetime.fromisoformat(archived.view.created_at.replace("Z", "+00:00"))
    return (round(created.timestamp() * 1000), archived.view.id)


def _cursor(position: tuple[int, str]) -> str:
    """An opaque cursor naming the position after which the next page starts: it stays
    valid while newer workflows arrive (they sort before it)."""
    raw = f"{position[0]}/{position[1]}".encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _decode_cursor(cursor: str) -> tuple[int, str]:
    position: tuple[int, str] | None
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        created, _, wf_id = raw.partition("/")
        position = (int(created), wf_id)
    except ValueError:
        position = None
    if position is None or not position[1]:
        raise InvalidInput(
            f"cursor {cursor[:80]!r} is not one a listing handed out; pass the previous "
            "page's `next_cursor` as it is, or leave it out for the first page",
            details={"cursor": cursor[:80]},
        )
    return position
