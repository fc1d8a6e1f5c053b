"""Snapshots: a workflow's whole state as one record, so the journal behind it can go.

Task rows are positional lists (not dicts) to keep a 10,000-task snapshot small and fast.
"""

from __future__ import annotations

from typing import Any

from daemons.orchestrator.engine.records import RecordKind, SnapshotRecord, SummaryRecord
from daemons.orchestrator.engine.runtime import Compensation, TaskRun, WorkflowRun
from daemons.orchestrator.model import TERMINAL_WORKFLOW_STATES, TaskState, WorkflowState
from daemons.orchestrator.views import workflow_view


def checkpoint(run: WorkflowRun) -> tuple[SnapshotRecord, SummaryRecord | None]:
    """The snapshot, and for a finished workflow the summary a restart reads instead."""
    if run.state not in TERMINAL_WORKFLOW_STATES or run.finished_at is None:
        return take(run), None
    summary: SummaryRecord = {
        "s": run.seq,
        "k": RecordKind.SUMMARY,
        "wf": run.id,
        "finished_at": run.finished_at,
        "view": workflow_view(run).model_dump(mode="json"),
    }
    return take(run), summary


def take(run: WorkflowRun) -> SnapshotRecord:
    """Everything `apply` built so far (journal records up to `run.seq`)."""
    return {
        "s": run.seq,
        "k": RecordKind.SNAPSHOT,
        "wf": run.id,
        "spec": run.spec.model_dump(mode="json", exclude_defaults=True),
        "created_at": run.created_at,
        "updated_at": run.updated_at,
        "finished_at": run.finished_at,
        "state": run.state.value,
        "reason": run.reason,
        "cancel_requested": run.cancel_requested,
        "halted": run.halted,
        "tasks": [_task_row(t) for t in run.tasks],
    }


def restore(run: WorkflowRun, snap: SnapshotRecord) -> None:
    """Load a snapshot's state into a freshly built run of the same spec."""
    run.seq = snap["s"]
    run.updated_at = snap["updated_at"]
    run.finished_at = snap["finished_at"]
    run.state = WorkflowState(snap["state"])
    run.reason = snap["reason"]
    run.cancel_requested = snap["cancel_requested"]
    run.halted = snap["halted"]
    for t, row in zip(run.tasks, snap["tasks"], strict=True):
        _restore_task(t, row)
    run.recount()
    run.recount_waiting()
    if run.state is WorkflowState.ROLLING_BACK:
        run.plan_undo(reset_failed=False)


def _task_row(t: TaskRun) -> list[Any]:
    comp = t.comp
    log = t.log
    return [
        t.state.value,
        t.attempt,
        t.started_at,
        t.finished_at,
        t.error,
        t.result,
        t.retry_at,
        None if comp is None else [comp.state.value, comp.attempt, comp.error, comp.retry_at],
        None
        if log is None
        else [log.dropped_bytes, [[s, line] for s, line in log.entries], log.dropped_lines],
    ]


def _restore_task(t: TaskRun, row: list[Any]) -> None:
    state, t.attempt, t.started_at, t.finished_at, t.error, t.result, t.retry_at, comp, log = row
    t.state = TaskState(state)
    if comp is not None:
        t.comp = Compensation(TaskState(comp[0]), comp[1])
        t.comp.error, t.comp.retry_at = comp[2], comp[3]
    if log:
        dropped, entries, *dropped_lines = log  # snapshots before the line count had two
        task_log = t.logger()
        for stream, line in entries:
            task_log.add(stream, line)
        task_log.dropped_bytes = dropped
        task_log.dropped_lines = dropped_lines[0] if dropped_lines else 0
