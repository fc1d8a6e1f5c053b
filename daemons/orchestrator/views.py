"""What callers read back: JSON-friendly pydantic views of workflows, tasks, logs, events.

Timestamps are ISO 8601 strings in UTC, so every tier shows the same text. Tools use these
models as their output models.
"""

from __future__ import annotations

import itertools
import re
from typing import TYPE_CHECKING, Any, Literal

from pydantic import Field

from daemons.orchestrator.model import FailurePolicy, TaskState, WorkflowState
from registry.errors import InvalidInput
from registry.model import StrictModel
from registry.timestamps import iso_utc, iso_utc_or_none

if TYPE_CHECKING:  # the builders below read engine state; callers import only the models
    from daemons.orchestrator.engine.runtime import TaskRun, WorkflowRun

EventKind = Literal["workflow", "task", "compensation"]
REDACTED = "[redacted]"
_CREDENTIAL_HEADERS = frozenset({"authorization", "cookie", "x-api-key", "proxy-authorization"})
_SECRET_LOOKING = re.compile(
    r"(?i).*(secret|passw(or)?d|passwd|token|api[_-]?key|credential|private[_-]?key).*"
)


def redact_params(params: Any) -> Any:
    """Task params as shown: a literal value under a credential header or a secret-looking
    name becomes `[redacted]` (a `{"secret": name}` reference stays: it holds no value)."""
    if isinstance(params, list):
        return [redact_params(item) for item in params]
    if not isinstance(params, dict) or (set(params) == {"secret"}):  # a reference
        return params
    shown: dict[str, Any] = {}
    for key, value in params.items():
        sensitive = key.lower() in _CREDENTIAL_HEADERS or _SECRET_LOOKING.fullmatch(key)
        shown[key] = REDACTED if sensitive and isinstance(value, str) else redact_params(value)
    return shown


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
    params: dict[str, Any] = Field(description="As submitted, redacted like the task's")
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
    params: dict[str, Any] = Field(
        description="As submitted, with literal credentials (known headers, secret-looking "
        "names) redacted"
    )
    error: str | None
    result: dict[str, Any] | None
    compensation: CompensationView | None


class LogLine(StrictModel):
    stream: str = Field(description='"stdout", "stderr" or "info" (from the engine)')
    text: str


LOG_PAGE_DEFAULT = 1000
LOG_PAGE_MAX = 5000


class TaskLogs(StrictModel):
    """One page of a task's log; lines are numbered from the task's first line."""

    workflow_id: str
    task_id: str
    lines: list[LogLine]
    offset: int = Field(description="Number of the first line of this page")
    next_offset: int | None = Field(description="Pass as `offset` for the next page")
    truncated: bool = Field(description="Older lines were dropped (the log keeps its tail)")
    dropped_bytes: int
    dropped_lines: int


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
            params=redact_params(spec.compensate.params),
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
        params=redact_params(spec.params),
        error=t.error,
        result=t.result,
        compensation=comp,
    )


def check_log_page(tail: int | None, offset: int | None, limit: int) -> None:
    """Refuse a page request no log could answer (the same rule on every tier)."""
    if tail is not None and tail < 0:
        raise InvalidInput(f"tail must be 0 or more lines, got {tail}")
    if offset is not None and offset < 0:
        raise InvalidInput(f"offset must be 0 or more, got {offset}")
    if tail is not None and offset is not None:
        raise InvalidInput("give either tail or offset, not both")
    if not 1 <= limit <= LOG_PAGE_MAX:
        raise InvalidInput(f"limit must be between 1 and {LOG_PAGE_MAX} lines, got {limit}")


def task_logs(
    wf: WorkflowRun, t: TaskRun, offset: int | None, limit: int, tail: int | None
) -> TaskLogs:
    """A page of the task's kept lines (its log, then the attempt in flight), copying only
    the page: the cap bounds the log, `limit` bounds the answer."""
    parts = [p for p in (t.log, None if t.live is None else t.live.new) if p is not None]
    kept = sum(len(p.entries) for p in parts)
    first = sum(p.dropped_lines for p in parts)
    if tail is not None:
        start = max(0, kept - tail)
    else:
        start = 0 if offset is None else min(max(0, offset - first), kept)
    stop = min(kept, start + limit)
    lines: list[LogLine] = []
    skip = start
    for part in parts:
        n = len(part.entries)
        if skip >= n:
            skip -= n
            continue
        for s, line in itertools.islice(part.entries, skip, skip + stop - start - len(lines)):
            lines.append(LogLine(stream=s, text=line))
        skip = 0
        if len(lines) == stop - start:
            break
    dropped = sum(p.dropped_bytes for p in parts)
    return TaskLogs(
        workflow_id=wf.id,
        task_id=t.spec.id,
        lines=lines,
        offset=first + start,
        next_offset=first + stop if stop < kept else None,
        truncated=dropped > 0 or first > 0,
        dropped_bytes=dropped,
        dropped_lines=first,
    )
