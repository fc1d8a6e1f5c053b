"""Transitions: how a workflow moves between phases (running, rolling back, finished)
once the current one has nothing left to do, and what a restart queues again.

Rollback runs the compensations of every succeeded task in reverse dependency order; the
runtime (`WorkflowRun.apply`) says which became ready, this module queues them.
"""

from __future__ import annotations

import time

from daemons.orchestrator.engine.dispatch import COMP, TASK, Dispatcher
from daemons.orchestrator.engine.events import RawEvent
from daemons.orchestrator.engine.records import Change, RecordKind, WorkflowStateRecord
from daemons.orchestrator.engine.runtime import WorkflowRun
from daemons.orchestrator.model import (
    TERMINAL_WORKFLOW_STATES,
    FailurePolicy,
    TaskState,
    WorkflowState,
)

_ACTIVE_COMP = (TaskState.PENDING, TaskState.RUNNING)


class Transitions(Dispatcher):
    """The workflow-level moves on top of dispatch; `Engine` adds commands and lifecycle."""

    def _advance(self, wf: WorkflowRun) -> None:
        """Move the workflow on once its current phase has nothing left to do."""
        state = wf.state
        if state is WorkflowState.ROLLING_BACK:
            if wf.comp_active == 0:
                self._end_rollback(wf)
            return
        if state in TERMINAL_WORKFLOW_STATES or wf.active:
            return
        if wf.cancel_requested:
            if wf.to_undo():
                self._begin_rollback(wf, wf.reason or "cancelled by request")
            else:
                self._finish(wf, WorkflowState.CANCELLED)
        elif wf.counts[TaskState.SUCCEEDED] == len(wf.tasks):
            self._finish(wf, WorkflowState.SUCCEEDED)
        elif wf.spec.on_failure is FailurePolicy.ROLLBACK:
            self._begin_rollback(wf, wf.reason or "a task failed")
        else:
            self._finish(wf, WorkflowState.FAILED)

    def _begin_rollback(self, wf: WorkflowRun, reason: str) -> None:
        event: RawEvent = ("workflow", wf.id, None, "rolling_back", None, 0, reason)
        ready = self._record(wf, {"k": RecordKind.ROLLBACK, "reason": reason}, event)
        self._push_all(wf, ready, COMP)
        self._advance(wf)
        self._pump()

    def _end_rollback(self, wf: WorkflowRun) -> None:
        failed = [t for t in wf.tasks if t.comp is not None and t.comp.state is TaskState.FAILED]
        if failed:
            left = ", ".join(t.spec.id for t in wf.to_undo())
            first = failed[0]
            reason = (
                f"compensation of task {first.spec.id!r} failed for good: "
                f"{first.comp.error if first.comp else ''}; still to undo: {left}. "
                "Fix the cause, then run workflow.rollback again"
            )
            self._finish(wf, WorkflowState.FAILED, reason)
        elif wf.cancel_requested:
            self._finish(wf, WorkflowState.CANCELLED)
        else:
            self._finish(wf, WorkflowState.ROLLED_BACK)

    def _finish(self, wf: WorkflowRun, state: WorkflowState, reason: str | None = None) -> None:
        record: WorkflowStateRecord = {"k": RecordKind.WORKFLOW, "state": state.value}
        if reason is not None:
            record["reason"] = reason
        message = reason or wf.reason
        self._record(wf, record, ("workflow", wf.id, None, state.value, None, 0, message))
        self._checkpoint(wf)  # a finished workflow is one snapshot, its journal emptied

    def _resume(self, wf: WorkflowRun) -> None:
        """Queue what a crash interrupted: started-but-unfinished attempts run again."""
        now = time.time()
        rolling_back = wf.state is WorkflowState.ROLLING_BACK
        for t in wf.tasks:
            if t.state is TaskState.RUNNING:
                if wf.cancel_requested:
                    event: RawEvent = ("task", wf.id, t.spec.id, "cancelled", t.attempt, 0, None)
                    cancelled: Change = {
                        "k": RecordKind.CANCELLED,
                        "task": t.spec.id,
                        "n": t.attempt,
                    }
                    self._record(wf, cancelled, event)
                    continue
                wf.set_state(t, TaskState.READY)
                t.resume = True
                self._push(wf, t, TASK)
            elif wf.halted:
                continue
            elif t.state is TaskState.READY:
                self._push(wf, t, TASK)
            elif t.state is TaskState.PENDING and t.retry_at is not None:
                self._after(t.retry_at - now, wf, t, TASK)
        if rolling_back:
            for t in wf.tasks:
                comp = t.comp
                if comp is None or comp.state not in _ACTIVE_COMP:
                    continue
                if comp.state is TaskState.RUNNING:
                    comp.state = TaskState.PENDING
                    t.resume = True
                if comp.retry_at is not None:
                    self._after(comp.retry_at - now, wf, t, COMP)
                else:
                    self._push(wf, t, COMP)
        self._advance(wf)
