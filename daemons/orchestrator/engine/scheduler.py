"""The engine: schedules ready tasks by priority within a concurrency bound, runs attempts,
retries with backoff, times out, cancels, rolls back, and resumes after a restart.

Every change goes through `_record`: journal it (queued for the next group commit), then
`WorkflowRun.apply` it. Nothing acts on a change before it is durable: an attempt awaits
the commit of its "start" record before its action runs, and events (the only thing
callers observe) are published by the committer after the fsync.

`snapshot` and `recovery` are imported as modules, not names: they build on the runtime
(`engine.runtime`), so `durability` and `engine` import each other and a name imported
from a half-initialised module would fail, depending on which package loads first.
"""

from __future__ import annotations

import asyncio
import functools
import heapq
import itertools
import logging
import random
import re
import secrets
import shutil
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Literal

from daemons.common.files import private_dir
from daemons.common.settings import Settings
from daemons.common.state import StateStore
from daemons.orchestrator.actions.base import Action, ActionContext
from daemons.orchestrator.durability import recovery, snapshot
from daemons.orchestrator.durability.commit import RETRY_S, GroupCommitter
from daemons.orchestrator.durability.disk import OS_DISK, Disk
from daemons.orchestrator.durability.journal import JournalFile, encode, workflow_ids
from daemons.orchestrator.durability.watermark import EventMark
from daemons.orchestrator.engine.attempt import Outcome, backoff_delay, execute
from daemons.orchestrator.engine.events import EventBus, RawEvent
from daemons.orchestrator.engine.graph import prepare
from daemons.orchestrator.engine.logs import AttemptLog
from daemons.orchestrator.engine.records import (
    Change,
    FailedRecord,
    RecordKind,
    SubmitRecord,
    SucceededRecord,
    WorkflowStateRecord,
)
from daemons.orchestrator.engine.retention import SWEEP_S, History
from daemons.orchestrator.engine.runtime import Archived, TaskRun, WorkflowRun
from daemons.orchestrator.model import (
    TERMINAL_WORKFLOW_STATES,
    WORKFLOW_ID_PATTERN,
    FailurePolicy,
    TaskState,
    WorkflowSpec,
    WorkflowState,
)
from daemons.orchestrator.views import EventKind
from registry.errors import Conflict, InvalidInput, Unavailable

log = logging.getLogger("prvng.orchestrator")

DEFAULT_CONCURRENCY = 32
CHECKPOINT_EVERY = 10_000
"""Records between snapshots (at least one per task, so snapshot cost stays O(1) per record)."""
_TASK, _COMP = 0, 1
_DONE = ("succeeded", "compensated")
_START: tuple[Literal[RecordKind.START], Literal[RecordKind.COMP_START]] = (
    RecordKind.START,
    RecordKind.COMP_START,
)
_SUCCEEDED: tuple[Literal[RecordKind.SUCCEEDED], Literal[RecordKind.COMP_SUCCEEDED]] = (
    RecordKind.SUCCEEDED,
    RecordKind.COMP_SUCCEEDED,
)
_FAILED: tuple[Literal[RecordKind.FAILED], Literal[RecordKind.COMP_FAILED]] = (
    RecordKind.FAILED,
    RecordKind.COMP_FAILED,
)
"""Record kinds by `_TASK`/`_COMP` (a tuple index, cheaper than an enum attribute)."""
_ACTIVE_COMP = (TaskState.PENDING, TaskState.RUNNING)


WORKFLOW_ID = re.compile(WORKFLOW_ID_PATTERN)


def check_id(workflow_id: str) -> None:
    """`InvalidInput` unless `workflow_id` is a valid id (it names files)."""
    if not WORKFLOW_ID.fullmatch(workflow_id):
        raise InvalidInput(
            f"workflow id {workflow_id!r} must be 1-64 of a-z, 0-9, '-' and '_', "
            "starting with a letter or digit",
            details={"id": workflow_id},
        )


def new_workflow_id() -> str:
    """Sortable by creation time (milliseconds), unique by 32 random bits."""
    return f"wf-{int(time.time() * 1000):012x}{secrets.token_hex(4)}"


class Engine:
    """Owns every workflow run; the facade (`Orchestrator`) turns its state into views."""

    def __init__(
        self,
        settings: Settings,
        actions: Mapping[str, Action],
        *,
        state: StateStore | None = None,
        concurrency: int = DEFAULT_CONCURRENCY,
        events: EventBus | None = None,
        checkpoint_every: int = CHECKPOINT_EVERY,
        disk: Disk = OS_DISK,
        retry_s: tuple[float, float] = RETRY_S,
    ) -> None:
        if concurrency < 1:
            raise ValueError("concurrency must be at least 1")
        self.settings = settings
        self.actions = actions
        self.state = state
        self.concurrency = concurrency
        self.checkpoint_every = checkpoint_every
        self.events = events or EventBus()
        self.workflows: dict[str, WorkflowRun] = {}
        """Loaded workflows: every unfinished one, and finished ones loaded since start."""
        self.archived: dict[str, Archived] = {}
        """Finished workflows known by their summary only (see `recovery`)."""
        self.history = History(settings.workflow_retention_s, settings.workflow_retention_count)
        self._loading: dict[str, asyncio.Task[WorkflowRun | None]] = {}
        self._sweeper: asyncio.TimerHandle | None = None
        self._journal_dir = private_dir(settings.journal_dir, home=settings.home)
        self.committer = GroupCommitter(
            self._on_commit,
            EventMark(self._journal_dir),
            disk=disk,
            on_outage=self._on_outage,
            on_recover=self._pump,
            retry_s=retry_s,
        )
        self._unwritten: dict[str, WorkflowRun] = {}
        """Submitted workflows whose submit record is not known to be on disk yet."""
        self.running = 0
        self._heap: list[tuple[int, int, int, int, WorkflowRun, int]] = []
        self._order = itertools.count()
        self._timers: dict[tuple[str, int, int], asyncio.TimerHandle] = {}
        self._attempts: set[asyncio.Task[None]] = set()
        self._stopping = False
        self._rng = random.Random()
        self._work_dir = settings.home / "work"

    # ---- lifecycle -----------------------------------------------------------------------

    async def start(self) -> None:
        """Replay the journals, then resume every unfinished workflow."""
        self.committer.start()
        recovered = await asyncio.to_thread(recovery.load_workflows, self._journal_dir)
        self.archived = recovered.archived
        finished = [(a.finished_at, wf_id) for wf_id, a in recovered.archived.items()]
        for wf in recovered.runs:
            self.workflows[wf.id] = wf
            if wf.state in TERMINAL_WORKFLOW_STATES:
                finished.append((wf.finished_at or wf.updated_at, wf.id))
        for at, wf_id in sorted(finished):
            self.history.finished(wf_id, at)
        await asyncio.to_thread(_remove_orphans, self._work_dir, self._journal_dir)
        for wf in recovered.runs:
            if wf.state not in TERMINAL_WORKFLOW_STATES:
                self._resume(wf)
        self._pump()
        self._sweep()

    async def stop(self, grace_s: float = 5.0) -> None:
        """Start nothing new, give running attempts `grace_s` to finish, cancel the rest.

        A cancelled attempt is not journaled as finished: the next start runs it again.
        """
        self._stopping = True
        if self._sweeper is not None:
            self._sweeper.cancel()
        for timer in self._timers.values():
            timer.cancel()
        self._timers.clear()
        if self._attempts and grace_s > 0:
            await asyncio.wait(set(self._attempts), timeout=grace_s)
        for task in self._attempts:
            task.cancel()
        await asyncio.gather(*self._attempts, return_exceptions=True)
        await self.committer.close()

    # ---- commands ------------------------------------------------------------------------

    def draft(self, spec: WorkflowSpec, workflow_id: str) -> tuple[WorkflowRun, bytes]:
        """Check and compile `spec` into a run and its journaled "submit" line: pure and
        heavy for a big workflow, so the caller runs it in a worker thread."""
        prepared = prepare(spec, self.actions)
        now = time.time()
        wf = WorkflowRun(
            workflow_id, spec, prepared.graph, now, JournalFile(self._journal_dir, workflow_id)
        )
        record: SubmitRecord = {
            "s": 1,
            "k": RecordKind.SUBMIT,
            "at": now,
            "wf": workflow_id,
            "spec": prepared.spec_json,
        }
        return wf, encode(record)

    def submit(self, wf: WorkflowRun, line: bytes, chosen: bool) -> WorkflowRun:
        """Journal and schedule a `draft`ed workflow (the caller awaits `durable()`).

        A `chosen` id makes submission idempotent: the same id with the same spec answers
        the existing workflow; with another spec it is a `Conflict`.
        """
        if self._stopping:
            raise Unavailable("the orchestrator is stopping; submit again once it is back")
        self.refuse_in_outage()
        if chosen:
            existing = self.existing(wf.id, wf.spec)
            if existing is not None:
                return existing
        wf_id = wf.id
        event = ("workflow", wf_id, None, "pending", None, wf.created_at, None)
        self.committer.append_line(wf.journal, line, event)
        wf.seq = 1
        self.workflows[wf_id] = wf
        self._unwritten[wf_id] = wf
        for t in wf.tasks:
            if t.state is TaskState.READY:
                self._push(wf, t, _TASK)
        self._pump()
        return wf

    def existing(
        self, workflow_id: str, spec: WorkflowSpec, same: bool | None = None
    ) -> WorkflowRun | None:
        """The workflow already submitted as `workflow_id` with `spec`, if any (`Conflict`
        if with another spec; `same` is the comparison when the caller made it already)."""
        check_id(workflow_id)
        wf = self.workflows.get(workflow_id)
        if wf is None:
            return None
        if not (wf.spec == spec if same is None else same):
            raise Conflict(
                f"workflow {workflow_id} exists with a different spec; choose another id",
                details={"id": workflow_id},
            )
        return wf

    def refuse_in_outage(self) -> None:
        """New work (anything a caller asks that would be journaled) waits for the disk."""
        if self.committer.outage is not None:
            raise self.committer.outage

    def cancel(self, wf: WorkflowRun) -> None:
        self.refuse_in_outage()
        if not wf.cancel_requested:
            self._record(wf, {"k": RecordKind.CANCEL, "reason": "cancelled by request"}, None)
            for t in wf.tasks:
                if t.state is TaskState.RUNNING and t.handle is not None:
                    t.handle.cancel()
        self._advance(wf)

    def rollback(self, wf: WorkflowRun, reason: str) -> None:
        self.refuse_in_outage()
        self._begin_rollback(wf, reason)

    def retry(self, wf: WorkflowRun) -> None:
        self.refuse_in_outage()
        ready = self._record(
            wf, {"k": RecordKind.RETRY}, ("workflow", wf.id, None, "running", None, 0, None)
        )
        self._push_all(wf, ready, _TASK)
        self._advance(wf)
        self._pump()

    async def load_archived(self, workflow_id: str) -> WorkflowRun | None:
        """Load a finished workflow known by its summary (None if deleted meanwhile)."""
        task = self._loading.get(workflow_id)
        if task is None:
            task = asyncio.create_task(self._load(workflow_id))
            self._loading[workflow_id] = task
        return await asyncio.shield(task)

    async def _load(self, workflow_id: str) -> WorkflowRun | None:
        journal = JournalFile(self._journal_dir, workflow_id)
        try:
            wf = await asyncio.to_thread(recovery.load_workflow, journal, workflow_id)
        finally:
            del self._loading[workflow_id]
        if wf is None or self.archived.pop(workflow_id, None) is None:
            return None
        self.workflows[workflow_id] = wf
        return wf

    # ---- retention -----------------------------------------------------------------------

    def prune(self, now: float) -> list[str]:
        """Delete the finished workflows retention no longer keeps; their ids (none in an
        outage: the next check deletes them)."""
        if self.committer.outage is not None:
            return []
        removed = []
        for workflow_id in self.history.due(now):
            if workflow_id in self._loading:
                continue  # being loaded: the next check deletes it
            wf = self.workflows.get(workflow_id)
            if wf is not None:
                if wf.state not in TERMINAL_WORKFLOW_STATES or wf.durable_state != wf.state:
                    self.history.forget(workflow_id)  # reopened: back when it finishes
                    continue
                del self.workflows[workflow_id]
                journal = wf.journal
            elif self.archived.pop(workflow_id, None) is not None:
                journal = JournalFile(self._journal_dir, workflow_id)
            else:
                self.history.forget(workflow_id)
                continue
            self.history.forget(workflow_id)
            self.committer.remove(journal, self._work_dir / workflow_id)
            removed.append(workflow_id)
        if removed:
            log.info("retention deleted %d finished workflows", len(removed))
        return removed

    def _sweep(self) -> None:
        if self._stopping:
            return
        self.prune(time.time())
        self._sweeper = asyncio.get_running_loop().call_later(SWEEP_S, self._sweep)

    # ---- scheduling ----------------------------------------------------------------------

    def _record(self, wf: WorkflowRun, record: Change, event: RawEvent | None) -> list[int]:
        """Journal `record` (durable with the next batch) and apply it; what became ready."""
        now = time.time()
        record["s"] = wf.seq + 1
        record["at"] = now
        if event is not None:
            event = (event[0], event[1], event[2], event[3], event[4], now, event[6])
        self.committer.append(wf.journal, record, event)
        ready = wf.apply(record)
        wf.since_checkpoint += 1
        if wf.since_checkpoint > max(self.checkpoint_every, len(wf.tasks)):
            self._checkpoint(wf)
        return ready

    def _checkpoint(self, wf: WorkflowRun) -> None:
        wf.since_checkpoint = 0
        self.committer.checkpoint(wf.journal, functools.partial(snapshot.checkpoint, wf))

    def _push(self, wf: WorkflowRun, t: TaskRun, kind: int) -> None:
        entry = (-wf.spec.priority, -t.spec.priority, next(self._order), kind, wf, t.index)
        heapq.heappush(self._heap, entry)

    def _push_all(self, wf: WorkflowRun, indices: list[int], kind: int) -> None:
        for i in indices:
            self._push(wf, wf.tasks[i], kind)

    def _pump(self) -> None:
        """Start queued attempts, best first, while there is room."""
        if self.committer.outage is not None:
            return  # nothing new starts until the journal is written again
        heap = self._heap
        while heap and self.running < self.concurrency and not self._stopping:
            _, _, _, kind, wf, i = heapq.heappop(heap)
            t = wf.tasks[i]
            if kind == _TASK:
                if t.state is not TaskState.READY or (wf.halted and not t.resume):
                    continue
                attempt = t.attempt if t.resume else t.attempt + 1
                event: RawEvent = ("task", wf.id, t.spec.id, "running", attempt, 0, None)
                self._record(wf, {"k": _START[kind], "task": t.spec.id, "n": attempt}, event)
            else:
                comp = t.comp
                if comp is None or comp.state is not TaskState.PENDING or comp.retry_at is not None:
                    continue
                attempt = comp.attempt if t.resume else comp.attempt + 1
                event = ("compensation", wf.id, t.spec.id, "running", attempt, 0, None)
                self._record(wf, {"k": _START[kind], "task": t.spec.id, "n": attempt}, event)
            t.resume = False
            self.running += 1
            handle = asyncio.create_task(self._attempt(wf, t, kind, attempt))
            t.handle = handle
            self._attempts.add(handle)
            handle.add_done_callback(functools.partial(self._attempt_ended, wf, t, kind, attempt))

    def _after(self, delay: float, wf: WorkflowRun, t: TaskRun, kind: int) -> None:
        """Queue `t` again once its backoff `delay` has passed."""
        key = (wf.id, t.index, kind)
        old = self._timers.pop(key, None)
        if old is not None:
            old.cancel()
        loop = asyncio.get_running_loop()
        self._timers[key] = loop.call_later(max(0.0, delay), self._retry_due, wf, t, kind)

    def _retry_due(self, wf: WorkflowRun, t: TaskRun, kind: int) -> None:
        self._timers.pop((wf.id, t.index, kind), None)
        if kind == _TASK:
            if t.state is not TaskState.PENDING or t.retry_at is None or wf.halted:
                return
            t.retry_at = None
            if t.waiting:
                return
            wf.set_state(t, TaskState.READY)
        else:
            if t.comp is None or t.comp.state is not TaskState.PENDING:
                return
            t.comp.retry_at = None
        self._push(wf, t, kind)
        self._pump()

    # ---- attempts ------------------------------------------------------------------------

    async def _attempt(self, wf: WorkflowRun, t: TaskRun, kind: int, attempt: int) -> None:
        spec = t.spec if kind == _TASK else t.spec.compensate
        assert spec is not None
        suffix = f"/{attempt}" if kind == _TASK else f"/compensate/{attempt}"
        await self.committer.written()  # the "start" record, before any side effect
        if not wf.workspace_ready:
            private_dir(self._work_dir / wf.id, home=self.settings.home)
            wf.workspace_ready = True
        sink = AttemptLog()
        ctx = ActionContext(
            workflow_id=wf.id,
            task_id=t.spec.id,
            attempt=attempt,
            idempotency_key=f"{wf.id}/{t.spec.id}{suffix}",
            workspace=self._work_dir / wf.id,
            settings=self.settings,
            log=sink,
            state=self.state,
        )
        action = self.actions.get(spec.action)
        t.live = sink
        try:
            outcome = await execute(action, spec.action, spec.params, ctx, spec.timeout_s)
        finally:
            t.live = None
        self.running -= 1
        t.handle = None
        self._attempt_done(wf, t, kind, attempt, outcome, sink)  # kept through an outage
        self._advance(wf)
        self._pump()

    def _attempt_ended(
        self, wf: WorkflowRun, t: TaskRun, kind: int, attempt: int, handle: asyncio.Task[None]
    ) -> None:
        """Account for a cancelled attempt (it may have been cancelled before it even ran)."""
        self._attempts.discard(handle)
        if not handle.cancelled():
            if handle.exception() is not None:
                log.error(
                    "attempt %s/%s/%d crashed",
                    wf.id,
                    t.spec.id,
                    attempt,
                    exc_info=handle.exception(),
                )
            return
        self.running -= 1
        t.handle = None
        if self._stopping or kind == _COMP:
            return  # shutdown: the journal still says "started", so recovery re-runs it
        if self.workflows.get(wf.id) is not wf:
            return  # forgotten in an outage before it was ever acknowledged
        self._record(
            wf,
            {"k": RecordKind.CANCELLED, "task": t.spec.id, "n": attempt},
            ("task", wf.id, t.spec.id, "cancelled", attempt, 0, None),
        )
        self._advance(wf)
        self._pump()

    def _attempt_done(
        self,
        wf: WorkflowRun,
        t: TaskRun,
        kind: int,
        attempt: int,
        outcome: Outcome,
        sink: AttemptLog,
    ) -> None:
        """Journal how the attempt went: success, a retry after backoff, or failure for good."""
        task_id = t.spec.id
        error = outcome.error
        if error is None:
            done: SucceededRecord = {"k": _SUCCEEDED[kind], "task": task_id, "n": attempt}
            if kind == _TASK and outcome.result:
                done["result"] = outcome.result
            _add_log(done, sink)
            event: RawEvent = ("task", wf.id, task_id, _DONE[kind], attempt, 0, None)
            self._push_all(wf, self._record(wf, done, event), kind)
            return
        record: FailedRecord = {"k": _FAILED[kind], "task": task_id, "n": attempt, "error": error}
        _add_log(record, sink)
        compensate = t.spec.compensate
        policy = t.spec.retry if kind == _TASK or compensate is None else compensate.retry
        label: EventKind = "task" if kind == _TASK else "compensation"
        if (
            outcome.retryable
            and attempt < policy.max_attempts
            and not (kind == _TASK and wf.halted)
        ):
            delay = backoff_delay(policy, attempt, self._rng)
            record["retry_at"] = time.time() + delay
            self._record(wf, record, (label, wf.id, task_id, "retrying", attempt, 0, error))
            self._after(delay, wf, t, kind)
            return
        self._record(wf, record, (label, wf.id, task_id, "failed", attempt, 0, error))

    # ---- workflow state ------------------------------------------------------------------

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
        self._push_all(wf, ready, _COMP)
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
                self._push(wf, t, _TASK)
            elif wf.halted:
                continue
            elif t.state is TaskState.READY:
                self._push(wf, t, _TASK)
            elif t.state is TaskState.PENDING and t.retry_at is not None:
                self._after(t.retry_at - now, wf, t, _TASK)
        if rolling_back:
            for t in wf.tasks:
                comp = t.comp
                if comp is None or comp.state not in _ACTIVE_COMP:
                    continue
                if comp.state is TaskState.RUNNING:
                    comp.state = TaskState.PENDING
                    t.resume = True
                if comp.retry_at is not None:
                    self._after(comp.retry_at - now, wf, t, _COMP)
                else:
                    self._push(wf, t, _COMP)
        self._advance(wf)

    def _on_outage(self) -> None:
        """A batch failed: forget the workflows whose submit never reached the disk (their
        callers get `unavailable`), so nothing a caller was refused runs later. Their
        attempts wait for their "start" record, so none has done anything yet."""
        forgotten: dict[str, WorkflowRun] = {}
        for wf_id, wf in list(self._unwritten.items()):
            del self._unwritten[wf_id]
            if wf.journal.exists:
                continue  # written before the failure: durable, so acknowledged
            forgotten[wf_id] = wf
            del self.workflows[wf_id]
            for t in wf.tasks:
                t.state = TaskState.CANCELLED  # the scheduler's queue skips them
                if t.handle is not None:
                    t.handle.cancel()
        if forgotten:
            log.warning(
                "journal outage: %d submitted workflows were never written; refused",
                len(forgotten),
            )
            self.committer.discard(
                [wf.journal for wf in forgotten.values()], lambda event: event[1] in forgotten
            )

    def _on_commit(self, events: list[RawEvent], first: int) -> None:
        """After a batch is durable: let workflows' durable state catch up, then publish."""
        workflows = self.workflows
        finished = False
        unwritten = self._unwritten
        for event in events:
            if event[0] == "workflow":
                if unwritten:
                    unwritten.pop(event[1], None)
                wf = workflows.get(event[1])
                if wf is not None:
                    wf.durable_state = WorkflowState(event[3])
                    if wf.durable_state in TERMINAL_WORKFLOW_STATES:
                        self.history.finished(wf.id, event[5])
                        finished = True
                    else:
                        self.history.forget(wf.id)
        if finished and len(self.history) > self.history.max_count:
            self.prune(time.time())
        self.events.publish(events, first)


def _add_log(record: SucceededRecord | FailedRecord, sink: AttemptLog) -> None:
    """Journal the attempt's log lines with its outcome (they join the task's log then)."""
    if sink.new is not None:
        record["log"] = sink.entries()
        if sink.new.dropped_bytes:
            record["dropped"] = sink.new.dropped_bytes
        if sink.new.dropped_lines:
            record["dropped_lines"] = sink.new.dropped_lines


def _remove_orphans(work_dir: Path, journal_dir: Path) -> None:
    """Work dirs of workflows that have no files left (retention deleted them just before
    a crash) go too."""
    if not work_dir.is_dir():
        return
    known = set(workflow_ids(journal_dir))
    for path in work_dir.iterdir():
        if path.name not in known and path.is_dir():
            shutil.rmtree(path, ignore_errors=True)
