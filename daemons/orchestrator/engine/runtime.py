"""The in-memory state of a workflow and the one function that changes it: `apply(record)`.

The engine journals a record and applies it; recovery applies the same records from the
journal. Because `apply` is deterministic, derived changes (dependents becoming ready or
skipped, the undo plan of a rollback) need no records of their own. Per-task state is a
`__slots__` object so 10,000 tasks stay small.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from daemons.orchestrator.engine.graph import Graph
from daemons.orchestrator.engine.logs import AttemptLog, TaskLog
from daemons.orchestrator.engine.records import (
    CancelledRecord,
    CancelRecord,
    Change,
    FailedRecord,
    RecordKind,
    RetryRecord,
    RollbackRecord,
    StartRecord,
    SucceededRecord,
    WorkflowStateRecord,
)
from daemons.orchestrator.model import TaskSpec, TaskState, WorkflowSpec, WorkflowState
from daemons.orchestrator.views import WorkflowView

if TYPE_CHECKING:  # durability builds on this module, not the other way round
    from daemons.orchestrator.durability.journal import JournalFile

_WAITING = (TaskState.PENDING, TaskState.READY)


@dataclass(frozen=True, slots=True)
class Archived:
    """A finished workflow known by its summary only; loaded in full when a caller needs
    more than its view (tasks, logs, retry, rollback)."""

    view: WorkflowView
    finished_at: float


class Compensation:
    """Progress of undoing one succeeded task (state: pending, running, succeeded, failed)."""

    __slots__ = ("attempt", "error", "retry_at", "state")

    def __init__(self, state: TaskState = TaskState.PENDING, attempt: int = 0) -> None:
        self.state = state
        self.attempt = attempt
        self.error: str | None = None
        self.retry_at: float | None = None


class TaskRun:
    """One task's progress. `attempt` is the number of the current or last attempt."""

    __slots__ = (
        "attempt",
        "comp",
        "error",
        "finished_at",
        "handle",
        "index",
        "live",
        "log",
        "result",
        "resume",
        "retry_at",
        "spec",
        "started_at",
        "state",
        "waiting",
    )

    def __init__(self, spec: TaskSpec, index: int, waiting: int) -> None:
        self.spec = spec
        self.index = index
        self.state = TaskState.PENDING if waiting else TaskState.READY
        self.waiting = waiting
        self.attempt = 0
        self.started_at: float | None = None
        self.finished_at: float | None = None
        self.retry_at: float | None = None
        self.error: str | None = None
        self.result: dict[str, Any] | None = None
        self.comp: Compensation | None = None
        self.log: TaskLog | None = None
        self.live: AttemptLog | None = None
        """Lines of the attempt in flight; they join `log` with its journal record."""
        self.handle: Any = None
        """The engine's asyncio task while an attempt runs."""
        self.resume = False
        """Recovered mid-attempt: run the same attempt number again (same idempotency key)."""

    def logger(self) -> TaskLog:
        if self.log is None:
            self.log = TaskLog()
        return self.log


class WorkflowRun:
    """A workflow: its spec, compiled graph, task runs and counters."""

    __slots__ = (
        "cancel_requested",
        "comp_active",
        "counts",
        "created_at",
        "durable_state",
        "finished_at",
        "graph",
        "halted",
        "id",
        "journal",
        "reason",
        "seq",
        "since_checkpoint",
        "spec",
        "state",
        "tasks",
        "undo_wait",
        "updated_at",
        "workspace_ready",
    )

    def __init__(
        self,
        workflow_id: str,
        spec: WorkflowSpec,
        graph: Graph,
        created_at: float,
        journal: JournalFile,
    ) -> None:
        self.id = workflow_id
        self.spec = spec
        self.graph = graph
        self.journal = journal
        self.created_at = self.updated_at = created_at
        self.finished_at: float | None = None
        self.state = WorkflowState.PENDING
        self.durable_state = WorkflowState.PENDING
        self.reason: str | None = None
        self.cancel_requested = False
        self.halted = False
        self.seq = 0
        self.since_checkpoint = 0
        self.workspace_ready = False
        self.undo_wait: list[int] | None = None
        self.comp_active = 0
        self.tasks = [TaskRun(t, i, len(graph.deps[i])) for i, t in enumerate(spec.tasks)]
        self.counts: dict[TaskState, int] = {}
        self.recount()

    # ---- queries -------------------------------------------------------------------------

    def task(self, task_id: str) -> TaskRun | None:
        i = self.graph.index.get(task_id)
        return None if i is None else self.tasks[i]

    @property
    def active(self) -> int:
        """Tasks that may still run (waiting, ready or running)."""
        c = self.counts
        return c[TaskState.PENDING] + c[TaskState.READY] + c[TaskState.RUNNING]

    def to_undo(self) -> list[TaskRun]:
        """Succeeded tasks whose compensation has not succeeded (yet)."""
        return [
            t
            for t in self.tasks
            if t.state is TaskState.SUCCEEDED and t.spec.compensate is not None
        ]

    # ---- changes -------------------------------------------------------------------------

    def apply(self, record: Change) -> list[int]:
        """Apply one journal record; the tasks (or compensations) it made ready to run."""
        self.seq = record["s"]
        at: float = record["at"]
        self.updated_at = at
        handler = _HANDLERS[record["k"]]
        return handler(self, record, at)

    def set_state(self, t: TaskRun, state: TaskState) -> None:
        """Change a task's state outside `apply` (recovery and backoff timers only)."""
        self._set(t, state)

    def _set(self, t: TaskRun, state: TaskState) -> None:
        counts = self.counts
        counts[t.state] -= 1
        counts[state] += 1
        t.state = state

    def _start(self, r: StartRecord, at: float) -> list[int]:
        t = self.tasks[self.graph.index[r["task"]]]
        self._set(t, TaskState.RUNNING)
        t.attempt = r["n"]
        t.started_at = at
        t.retry_at = None
        if self.state is WorkflowState.PENDING:
            self.state = WorkflowState.RUNNING
        return []

    def _succeeded(self, r: SucceededRecord, at: float) -> list[int]:
        t = self.tasks[self.graph.index[r["task"]]]
        self._set(t, TaskState.SUCCEEDED)
        t.finished_at = at
        t.error = None
        t.result = r.get("result")
        _add_log(t, r)
        ready = []
        for d in self.graph.dependents[t.index]:
            dep = self.tasks[d]
            dep.waiting -= 1
            if dep.waiting == 0 and dep.state is TaskState.PENDING and dep.retry_at is None:
                self._set(dep, TaskState.READY)
                ready.append(d)
        return ready

    def _failed(self, r: FailedRecord, at: float) -> list[int]:
        t = self.tasks[self.graph.index[r["task"]]]
        t.error = r["error"]
        _add_log(t, r)
        retry_at = r.get("retry_at")
        if retry_at is not None:
            self._set(t, TaskState.PENDING)
            t.retry_at = retry_at
            t.logger().add("info", f"attempt {r['n']} failed: {t.error}; retrying")
            return []
        self._set(t, TaskState.FAILED)
        t.finished_at = at
        t.logger().add("info", f"attempt {r['n']} failed for good: {t.error}")
        if self.reason is None:
            self.reason = f"task {t.spec.id!r} failed: {t.error}"
        self._halt(TaskState.SKIPPED)  # its dependents, and everything else not yet started
        return []

    def _cancelled(self, r: CancelledRecord, at: float) -> list[int]:
        t = self.tasks[self.graph.index[r["task"]]]
        self._set(t, TaskState.CANCELLED)
        t.finished_at = at
        t.logger().add("info", f"attempt {t.attempt} cancelled")
        return []

    def _cancel(self, r: CancelRecord, at: float) -> list[int]:
        self.cancel_requested = True
        self.reason = r.get("reason") or "cancelled by request"
        self._halt(TaskState.CANCELLED)
        return []

    def _workflow(self, r: WorkflowStateRecord, at: float) -> list[int]:
        self.state = WorkflowState(r["state"])
        if "reason" in r:
            self.reason = r["reason"]
        if self.state in (WorkflowState.PENDING, WorkflowState.RUNNING, WorkflowState.ROLLING_BACK):
            self.finished_at = None
        else:
            self.finished_at = at
        return []

    def _rollback(self, r: RollbackRecord, at: float) -> list[int]:
        self.state = WorkflowState.ROLLING_BACK
        self.finished_at = None
        if r.get("reason"):
            self.reason = r["reason"]
        self.halted = True
        return self.plan_undo(reset_failed=True)

    def _retry(self, r: RetryRecord, at: float) -> list[int]:
        """Resume: everything that did not succeed runs again (attempt numbers go on)."""
        self.state = WorkflowState.RUNNING
        self.reason = None
        self.finished_at = None
        self.cancel_requested = self.halted = False
        self.undo_wait = None
        self.comp_active = 0
        succeeded = TaskState.SUCCEEDED
        for t in self.tasks:
            t.comp = None
            if t.state is not succeeded:
                self._set(t, TaskState.PENDING)
                t.error = t.retry_at = t.finished_at = None
        return self.recount_waiting()

    def _comp_started(self, r: StartRecord, at: float) -> list[int]:
        comp = self._comp(r)
        comp.state = TaskState.RUNNING
        comp.attempt = r["n"]
        comp.retry_at = None
        return []

    def _comp_succeeded(self, r: SucceededRecord, at: float) -> list[int]:
        t = self.tasks[self.graph.index[r["task"]]]
        comp = self._comp(r)
        comp.state = TaskState.SUCCEEDED
        comp.error = None
        self.comp_active -= 1
        _add_log(t, r)
        self._set(t, TaskState.COMPENSATED)
        t.finished_at = at
        if self.undo_wait is None:
            return []
        return self._walk_undo(_release(self.undo_wait, self.graph.deps[t.index]))

    def _comp_failed(self, r: FailedRecord, at: float) -> list[int]:
        t = self.tasks[self.graph.index[r["task"]]]
        comp = self._comp(r)
        comp.error = r["error"]
        _add_log(t, r)
        retry_at = r.get("retry_at")
        if retry_at is not None:
            comp.state = TaskState.PENDING
            comp.retry_at = retry_at
            t.logger().add("info", f"compensation attempt {r['n']} failed: {comp.error}; retrying")
        else:
            comp.state = TaskState.FAILED
            self.comp_active -= 1
            t.logger().add("info", f"compensation attempt {r['n']} failed for good: {comp.error}")
        return []

    def _comp(self, r: StartRecord | SucceededRecord | FailedRecord) -> Compensation:
        comp = self.tasks[self.graph.index[r["task"]]].comp
        if comp is None:
            raise ValueError(f"journal names a compensation of {r['task']!r} that was not planned")
        return comp

    # ---- derived changes -----------------------------------------------------------------

    def _halt(self, state: TaskState) -> None:
        """Start nothing new: every task not yet running ends in `state`."""
        self.halted = True
        for t in self.tasks:
            if t.state in _WAITING:
                self._set(t, state)
                t.retry_at = None

    def recount_waiting(self) -> list[int]:
        """Recompute dependency counters from task states; tasks that became ready."""
        ready = []
        for t in self.tasks:
            t.waiting = sum(
                1
                for d in self.graph.deps[t.index]
                if self.tasks[d].state is not TaskState.SUCCEEDED
            )
            if t.waiting == 0 and t.state is TaskState.PENDING and t.retry_at is None:
                self._set(t, TaskState.READY)
                ready.append(t.index)
        return ready

    def plan_undo(self, *, reset_failed: bool) -> list[int]:
        """Compensate in reverse dependency order: a task is undone after all its dependents.

        Tasks with nothing to undo pass through at once. Returns the compensations that can
        run now; the others are released by `_comp_succeeded` as their dependents are undone.
        """
        dependents = self.graph.dependents
        self.undo_wait = [len(d) for d in dependents]
        self.comp_active = 0
        roots = [i for i, d in enumerate(dependents) if not d]
        return self._walk_undo(roots, reset_failed=reset_failed)

    def _walk_undo(self, stack: list[int], *, reset_failed: bool = False) -> list[int]:
        wait = self.undo_wait
        if wait is None:
            return []
        deps = self.graph.deps
        ready: list[int] = []
        while stack:
            t = self.tasks[stack.pop()]
            if t.state is TaskState.SUCCEEDED and t.spec.compensate is not None:
                if self._activate(t, reset_failed):
                    ready.append(t.index)
                continue
            stack.extend(_release(wait, deps[t.index]))
        return ready

    def _activate(self, t: TaskRun, reset_failed: bool) -> bool:
        """Make `t`'s compensation runnable; False when it failed for good and stays so."""
        comp = t.comp
        if comp is None:
            t.comp = Compensation()
        elif comp.state is TaskState.FAILED:
            if not reset_failed:
                return False
            comp.state = TaskState.PENDING
            comp.error = None
        self.comp_active += 1
        return True

    def recount(self) -> None:
        """Rebuild the per-state task counts (after restoring states wholesale)."""
        self.counts = dict.fromkeys(TaskState, 0)
        for t in self.tasks:
            self.counts[t.state] += 1


def _release(wait: list[int], deps: tuple[int, ...]) -> list[int]:
    released = []
    for d in deps:
        wait[d] -= 1
        if wait[d] == 0:
            released.append(d)
    return released


def _add_log(t: TaskRun, r: SucceededRecord | FailedRecord) -> None:
    entries = r.get("log")
    if entries:
        log = t.logger()
        log.dropped_bytes += r.get("dropped", 0)
        log.dropped_lines += r.get("dropped_lines", 0)
        for stream, line in entries:
            log.add(stream, line)


_HANDLERS: dict[str, Callable[[WorkflowRun, Any, float], list[int]]] = {
    RecordKind.START: WorkflowRun._start,
    RecordKind.SUCCEEDED: WorkflowRun._succeeded,
    RecordKind.FAILED: WorkflowRun._failed,
    RecordKind.CANCELLED: WorkflowRun._cancelled,
    RecordKind.CANCEL: WorkflowRun._cancel,
    RecordKind.WORKFLOW: WorkflowRun._workflow,
    RecordKind.ROLLBACK: WorkflowRun._rollback,
    RecordKind.RETRY: WorkflowRun._retry,
    RecordKind.COMP_START: WorkflowRun._comp_started,
    RecordKind.COMP_SUCCEEDED: WorkflowRun._comp_succeeded,
    RecordKind.COMP_FAILED: WorkflowRun._comp_failed,
}
"""By `k`: a record read back from disk has a plain `str` there, a StrEnum's equal."""
