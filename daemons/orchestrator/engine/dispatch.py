"""Dispatch: the queue of attempts waiting to start (best first, within the concurrency
bound), the backoff timers of failed ones, and one attempt from its journaled "start"
to its journaled outcome.

Every change goes through `_record`: journal it (queued for the next group commit), then
`WorkflowRun.apply` it. Nothing acts on a change before it is durable: an attempt awaits
the commit of its "start" record before its action runs. What an attempt's end means for
its workflow (finish, roll back) is `Transitions._advance`, one level up, so this base
declares it abstract; the state it works on is created by `Engine.__init__`.

`snapshot` is imported as a module, not names: it builds on the runtime
(`engine.runtime`), so `durability` and `engine` import each other and a name imported
from a half-initialised module would fail, depending on which package loads first.
"""

from __future__ import annotations

import abc
import asyncio
import functools
import heapq
import itertools
import logging
import random
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Literal

from daemons.common.files import PrivateChildren
from daemons.common.settings import Settings
from daemons.common.state import StateStore
from daemons.orchestrator.actions.base import Action, ActionContext
from daemons.orchestrator.durability import snapshot
from daemons.orchestrator.durability.commit import GroupCommitter
from daemons.orchestrator.engine.attempt import Outcome, backoff_delay, execute
from daemons.orchestrator.engine.events import RawEvent
from daemons.orchestrator.engine.logs import AttemptLog
from daemons.orchestrator.engine.records import (
    Change,
    FailedRecord,
    RecordKind,
    SucceededRecord,
)
from daemons.orchestrator.engine.runtime import TaskRun, WorkflowRun
from daemons.orchestrator.model import TaskState
from daemons.orchestrator.views import EventKind

log = logging.getLogger("prvng.orchestrator")

TASK, COMP = 0, 1
"""What an attempt runs: the task's action, or its compensation."""
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
"""Record kinds by `TASK`/`COMP` (a tuple index, cheaper than an enum attribute)."""


class Dispatcher(abc.ABC):
    """Starts queued attempts and journals how they end; `Engine` is the concrete class."""

    settings: Settings
    actions: Mapping[str, Action]
    state: StateStore | None
    concurrency: int
    checkpoint_every: int
    committer: GroupCommitter
    workflows: dict[str, WorkflowRun]
    running: int
    _heap: list[tuple[int, int, int, int, WorkflowRun, int]]
    _order: itertools.count[int]
    _timers: dict[tuple[str, int, int], asyncio.TimerHandle]
    _attempts: set[asyncio.Task[None]]
    _stopping: bool
    _rng: random.Random
    _work_dir: Path
    _workspaces: PrivateChildren

    @abc.abstractmethod
    def _advance(self, wf: WorkflowRun) -> None:
        """Move the workflow on once its current phase has nothing left to do."""

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
            if kind == TASK:
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
        if kind == TASK:
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
        spec = t.spec if kind == TASK else t.spec.compensate
        assert spec is not None
        suffix = f"/{attempt}" if kind == TASK else f"/compensate/{attempt}"
        await self.committer.written()  # the "start" record, before any side effect
        if not wf.workspace_ready:
            self._workspaces.make(wf.id)
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
        if self._stopping or kind == COMP:
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
            if kind == TASK and outcome.result:
                done["result"] = outcome.result
            _add_log(done, sink)
            event: RawEvent = ("task", wf.id, task_id, _DONE[kind], attempt, 0, None)
            self._push_all(wf, self._record(wf, done, event), kind)
            return
        record: FailedRecord = {"k": _FAILED[kind], "task": task_id, "n": attempt, "error": error}
        _add_log(record, sink)
        compensate = t.spec.compensate
        policy = t.spec.retry if kind == TASK or compensate is None else compensate.retry
        label: EventKind = "task" if kind == TASK else "compensation"
        if outcome.retryable and attempt < policy.max_attempts and not (kind == TASK and wf.halted):
            delay = backoff_delay(policy, attempt, self._rng)
            record["retry_at"] = time.time() + delay
            self._record(wf, record, (label, wf.id, task_id, "retrying", attempt, 0, error))
            self._after(delay, wf, t, kind)
            return
        self._record(wf, record, (label, wf.id, task_id, "failed", attempt, 0, error))


def _add_log(record: SucceededRecord | FailedRecord, sink: AttemptLog) -> None:
    """Journal the attempt's log lines with its outcome (they join the task's log then)."""
    if sink.new is not None:
        record["log"] = sink.entries()
        if sink.new.dropped_bytes:
            record["dropped"] = sink.new.dropped_bytes
        if sink.new.dropped_lines:
            record["dropped_lines"] = sink.new.dropped_lines
