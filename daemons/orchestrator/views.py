"""What callers read back: JSON-friendly pydantic views of workflows, tasks, logs, events.

Timestamps are ISO 8601 strings in UTC, so every tier shows the same text. Tools use these
models as their output models.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Literal

from pydantic import Field

from daemons.orchestrator.model import FailurePolicy, TaskState, WorkflowState
from registry.model import StrictModel
from registry.timestamps import iso_utc, iso_utc_or_none

if TYPE_CHECKING:  # the builders below read engine state; callers import only the models
    from daemons.orchestrator.engine.runtime import TaskRun, WorkflowRun

EventKind = Literal["workflow", "task", "compensation"]


class WorkflowView(StrictModel):
    id: str
    name: str
    state: WorkflowState
    priority: int
    labels: dict[str, str]
    on_failure: FailurePolicy
    reason: str | None = Field(description="Why it failed, was cancelled or rolled back")
    created_at: str
    updated_at: str
    finished_at: str | None
    tasks_total: int
    task_counts: dict[TaskState, int] = Field(
        description="Tasks per state (states with none omitted)"
    )


class WorkflowPage(StrictModel):
    workflows: list[WorkflowView]
    next_cursor: str | None = Field(description="Pass as `cursor` for the next (older) page")


class CompensationView(StrictModel):
    action: str
    state: TaskState | None = Field(description="None until a rollback plans it")
    attempts: int
    error: str | None
    next_attempt_at: str | None


class TaskView(StrictModel):
    workflow_id: str
    id: str
    action: str
    state: TaskState
    attempts: int = Field(description="Attempts started so far")
    max_attempts: int
    depends_on: list[str]
    priority: int
    timeout_s: float | None
    started_at: str | None = Field(description="Start of the latest attempt")
    finished_at: str | None
    next_attempt_at: str | None = Field(description="When a retry is due (backoff)")
    error: str | None
    result: dict[str, Any] | None
    compensation: CompensationView | None


class LogLine(StrictModel):
    stream: str = Field(description='"stdout", "stderr" or "info" (from the engine)')
    text: str


class TaskLogs(StrictModel):
    workflow_id: str
    task_id: str
    lines: list[LogLine]
    truncated: bool = Field(description="Older lines were dropped (the log keeps its tail)")
    dropped_bytes: int


class Event(StrictModel):
    seq: int = Field(description="Increasing; resume a stream after it (SSE Last-Event-ID)")
    kind: EventKind
    workflow_id: str
    task_id: str | None = None
    state: str
    attempt: int | None = None
    at: str
    message: str | None = None


def workflow_view(wf: WorkflowRun) -> WorkflowView:
    spec = wf.spec
    return WorkflowView(
        id=wf.id,
        name=spec.name,
        state=wf.state,
        priority=spec.priority,
        labels=spec.labels,
        on_failure=spec.on_failure,
        reason=wf.reason,
        created_at=iso_utc(wf.created_at),
        updated_at=iso_utc(wf.updated_at),
        finished_at=iso_utc_or_none(wf.finished_at),
        tasks_total=len(wf.tasks),
        task_counts={state: n for state, n in wf.counts.items() if n},
    )


def task_view(wf: WorkflowRun, t: TaskRun) -> TaskView:
    spec = t.spec
    comp = None
    if spec.compensate is not None:
        c = t.comp
        comp = CompensationView(
            action=spec.compensate.action,
            state=None if c is None else c.state,
            attempts=0 if c is None else c.attempt,
            error=None if c is None else c.error,
            next_attempt_at=None if c is None else iso_utc_or_none(c.retry_at),
        )
    return TaskView(
        workflow_id=wf.id,
        id=spec.id,
        action=spec.action,
        state=t.state,
        attempts=t.attempt,
        max_attempts=spec.retry.max_attempts,
        depends_on=spec.depends_on,
        priority=spec.priority,
        timeout_s=spec.timeout_s,
        started_at=iso_utc_or_none(t.started_at),
        finished_at=iso_utc_or_none(t.finished_at),
        next_attempt_at=iso_utc_or_none(t.retry_at),
        error=t.error,
        result=t.result,
        compensation=comp,
    )


def task_logs(wf: WorkflowRun, t: TaskRun, tail: int | None) -> TaskLogs:
    log, live = t.log, (None if t.live is None else t.live.new)
    entries = [] if log is None else log.tail()
    if live is not None:
        entries += live.tail()
    if tail is not None:
        entries = entries[-tail:] if tail > 0 else []
    dropped = (0 if log is None else log.dropped_bytes) + (
        0 if live is None else live.dropped_bytes
    )
    return TaskLogs(
        workflow_id=wf.id,
        task_id=t.spec.id,
        lines=[LogLine(stream=s, text=line) for s, line in entries],
        truncated=dropped > 0,
        dropped_bytes=dropped,
    )
