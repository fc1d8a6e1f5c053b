"""The engine: every workflow run, the commands callers give it (submit, cancel, retry,
rollback), its lifecycle (replay the journals and resume; stop with a grace period) and
retention, and what happens when a journal batch is durable or fails.

The engine is three layers, one concern each: `dispatch.Dispatcher` (the attempt queue,
backoff timers, one attempt's run), `transitions.Transitions` (a workflow's phases,
rollback, resume after a restart) and `Engine` here. Events (the only thing callers
observe) are published by the committer after the fsync (`_on_commit`).

`recovery` is imported as a module, not names (see `dispatch`).
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import random
import shutil
import time
from collections.abc import Mapping
from pathlib import Path

from daemons.common.files import PrivateChildren, private_dir
from daemons.common.settings import Settings
from daemons.common.state import StateStore
from daemons.orchestrator.actions.base import Action
from daemons.orchestrator.durability import recovery
from daemons.orchestrator.durability.commit import RETRY_S, GroupCommitter
from daemons.orchestrator.durability.disk import OS_DISK, Disk
from daemons.orchestrator.durability.journal import JournalFile, encode, workflow_ids
from daemons.orchestrator.durability.watermark import EventMark
from daemons.orchestrator.engine.dispatch import TASK
from daemons.orchestrator.engine.events import EventBus, RawEvent
from daemons.orchestrator.engine.graph import prepare
from daemons.orchestrator.engine.ids import check_id
from daemons.orchestrator.engine.records import RecordKind, SubmitRecord
from daemons.orchestrator.engine.retention import SWEEP_S, History
from daemons.orchestrator.engine.runtime import Archived, WorkflowRun
from daemons.orchestrator.engine.transitions import Transitions
from daemons.orchestrator.model import (
    TERMINAL_WORKFLOW_STATES,
    TaskState,
    WorkflowSpec,
    WorkflowState,
)
from registry.errors import Conflict, Unavailable

log = logging.getLogger("prvng.orchestrator")

DEFAULT_CONCURRENCY = 32
CHECKPOINT_EVERY = 10_000
"""Records between snapshots (at least one per task, so snapshot cost stays O(1) per record)."""


class Engine(Transitions):
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
        self.workflows = {}
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
        self._heap = []
        self._order = itertools.count()
        self._timers = {}
        self._attempts = set()
        self._stopping = False
        self._rng = random.Random()
        self._work_dir = settings.home / "work"
        self._workspaces = PrivateChildren(self._work_dir, home=settings.home)

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
            workflow_id,
            spec,
            prepared.graph,
            now,
            JournalFile(self._journal_dir, workflow_id, new=True),
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
                self._push(wf, t, TASK)
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
        self._push_all(wf, ready, TASK)
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


def _remove_orphans(work_dir: Path, journal_dir: Path) -> None:
    """Work dirs of workflows that have no files left (retention deleted them just before
    a crash) go too."""
    if not work_dir.is_dir():
        return
    known = set(workflow_ids(journal_dir))
    for path in work_dir.iterdir():
        if path.name not in known and path.is_dir():
            shutil.rmtree(path, ignore_errors=True)
