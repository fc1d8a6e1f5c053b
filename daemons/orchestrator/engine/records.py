"""The state changes the engine journals, one `TypedDict` per record shape.

A record is what `WorkflowRun.apply` applies and what the journal stores as one line of
compact JSON. `k` names the kind with the short values of `RecordKind`, which journals on
disk already hold: they must never change. `s` (the workflow's sequence number) and `at`
(seconds since the epoch) are stamped by `Engine._record` just before journaling. A task's
start, success and failure share their shape with its compensation's (`cstart`, `cok`,
`cfail`). TypedDicts are plain dicts at run time: typing the hot path costs nothing.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any, Literal, NotRequired, TypedDict


class RecordKind(StrEnum):
    SUBMIT = "submit"
    START = "start"
    SUCCEEDED = "ok"
    FAILED = "fail"
    CANCELLED = "cancelled"
    CANCEL = "cancel"
    WORKFLOW = "wf"
    ROLLBACK = "rollback"
    RETRY = "retry"
    COMP_START = "cstart"
    COMP_SUCCEEDED = "cok"
    COMP_FAILED = "cfail"
    SNAPSHOT = "snapshot"
    SUMMARY = "summary"


class _Stamped(TypedDict, total=False):
    s: int
    at: float


class SubmitRecord(_Stamped):
    """The first record of a journal: the workflow's id and spec (defaults left out)."""

    k: Literal[RecordKind.SUBMIT]
    wf: str
    spec: dict[str, Any]


class StartRecord(_Stamped):
    """Attempt `n` of a task (or of its compensation) starts."""

    k: Literal[RecordKind.START, RecordKind.COMP_START]
    task: str
    n: int


class SucceededRecord(_Stamped):
    """Attempt `n` succeeded, with its log lines (`[stream, line]`) and a task's result."""

    k: Literal[RecordKind.SUCCEEDED, RecordKind.COMP_SUCCEEDED]
    task: str
    n: int
    log: NotRequired[list[list[str]]]
    dropped: NotRequired[int]
    dropped_lines: NotRequired[int]
    result: NotRequired[dict[str, Any]]


class FailedRecord(_Stamped):
    """Attempt `n` failed; with `retry_at`, another attempt is due then, else for good."""

    k: Literal[RecordKind.FAILED, RecordKind.COMP_FAILED]
    task: str
    n: int
    error: str
    retry_at: NotRequired[float]
    log: NotRequired[list[list[str]]]
    dropped: NotRequired[int]
    dropped_lines: NotRequired[int]


class CancelledRecord(_Stamped):
    """A running attempt `n` was cancelled (the task ends cancelled)."""

    k: Literal[RecordKind.CANCELLED]
    task: str
    n: int


class CancelRecord(_Stamped):
    """Cancellation was requested: nothing new starts."""

    k: Literal[RecordKind.CANCEL]
    reason: str


class WorkflowStateRecord(_Stamped):
    """The workflow reached `state` (a `WorkflowState` value)."""

    k: Literal[RecordKind.WORKFLOW]
    state: str
    reason: NotRequired[str]


class RollbackRecord(_Stamped):
    """Compensating starts, in reverse dependency order."""

    k: Literal[RecordKind.ROLLBACK]
    reason: str


class RetryRecord(_Stamped):
    """Resume: every task that did not succeed runs again."""

    k: Literal[RecordKind.RETRY]


class SnapshotRecord(TypedDict):
    """A workflow's whole state up to journal record `s` (task rows are positional lists)."""

    s: int
    k: Literal[RecordKind.SNAPSHOT]
    wf: str
    spec: dict[str, Any]
    created_at: float
    updated_at: float
    finished_at: float | None
    state: str
    reason: str | None
    cancel_requested: bool
    halted: bool
    tasks: list[list[Any]]


class SummaryRecord(TypedDict):
    """What a finished workflow shows without loading it: the first line of its snapshot
    file, so a restart reads one short line instead of replaying it."""

    s: int
    k: Literal[RecordKind.SUMMARY]
    wf: str
    finished_at: float
    view: dict[str, Any]
    """Its `WorkflowView`, as JSON."""


Change = (
    StartRecord
    | SucceededRecord
    | FailedRecord
    | CancelledRecord
    | CancelRecord
    | WorkflowStateRecord
    | RollbackRecord
    | RetryRecord
)
"""What `WorkflowRun.apply` takes: every record after the submit."""
Record = SubmitRecord | Change | SnapshotRecord | SummaryRecord
"""Anything a journal or snapshot file holds."""
