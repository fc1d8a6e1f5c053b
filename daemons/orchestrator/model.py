"""Workflow and task specifications and their states (what callers submit and read back)."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Any

from pydantic import Field, StringConstraints

from registry.model import StrictModel

WORKFLOW_ID_PATTERN = r"^[a-z0-9][a-z0-9_-]{0,63}$"
"""A caller-chosen workflow id (it names journal files, so it is kept plain)."""

SERVER_NAME_PATTERN = r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$"
"""A server name: a DNS label (providers name machines, directories and hosts after it)."""

MAX_TASKS = 10_000
MAX_DEPTH = 1_000
"""Tasks on the longest dependency path."""
MAX_TASK_PARAMS_BYTES = 64 * 1024
"""One task's params (and its compensation's), as compact JSON."""
MAX_WORKFLOW_PARAMS_BYTES = 4 * 1024 * 1024
"""Every task's params together: what is journaled, snapshotted and kept in memory."""

TaskId = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,127}$")]


class RetryPolicy(StrictModel):
    """Exponential backoff with jitter: delay = min(max_backoff_s, backoff_s * 2**(n-1))."""

    max_attempts: int = Field(default=1, ge=1, le=100)
    backoff_s: float = Field(default=0.5, ge=0, le=3600)
    max_backoff_s: float = Field(default=30, ge=0, le=86400)
    jitter: float = Field(default=0.1, ge=0, le=1, description="± fraction of each delay")


class Compensation(StrictModel):
    """What undoes a succeeded task when its workflow rolls back."""

    action: str = Field(min_length=1, max_length=64)
    params: dict[str, Any] = Field(default_factory=dict)
    retry: RetryPolicy = Field(default_factory=lambda: RetryPolicy(max_attempts=3))
    timeout_s: float | None = Field(default=600, gt=0)


class TaskSpec(StrictModel):
    id: TaskId
    action: str = Field(min_length=1, max_length=64)
    params: dict[str, Any] = Field(default_factory=dict)
    depends_on: list[TaskId] = Field(default_factory=list)
    retry: RetryPolicy = Field(default_factory=RetryPolicy)
    timeout_s: float | None = Field(default=3600, gt=0)
    priority: int = Field(default=0, ge=-1000, le=1000)
    compensate: Compensation | None = None


class FailurePolicy(StrEnum):
    """What a workflow does when a task fails for good."""

    ROLLBACK = "rollback"
    """Start nothing new, let running tasks finish, then undo every succeeded task."""
    STOP = "stop"
    """Start nothing new, let running tasks finish, end `failed` (then retry or roll back)."""


class WorkflowSpec(StrictModel):
    name: Annotated[str, StringConstraints(min_length=1, max_length=128)]
    priority: int = Field(default=0, ge=-1000, le=1000)
    labels: dict[str, str] = Field(default_factory=dict)
    on_failure: FailurePolicy = FailurePolicy.ROLLBACK
    tasks: list[TaskSpec] = Field(min_length=1, max_length=100_000)


class WorkflowState(StrEnum):
    PENDING = "pending"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"
    ROLLING_BACK = "rolling_back"
    ROLLED_BACK = "rolled_back"


class TaskState(StrEnum):
    PENDING = "pending"
    READY = "ready"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    SKIPPED = "skipped"
    CANCELLED = "cancelled"
    COMPENSATED = "compensated"


TERMINAL_WORKFLOW_STATES = frozenset(
    {
        WorkflowState.SUCCEEDED,
        WorkflowState.FAILED,
        WorkflowState.CANCELLED,
        WorkflowState.ROLLED_BACK,
    }
)
