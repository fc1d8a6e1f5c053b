"""Group commit: one writer task makes journal records durable in batches.

Records are queued with `append` (cheap, synchronous); the writer takes everything queued,
writes it and fdatasyncs each dirty file once, in a worker thread, while the loop goes on
queueing the next batch. `durable()` waits for the batch holding every record appended
so far, so callers act on a change only once it would survive a crash. Events attached to
records are handed to `on_commit` after their batch is durable, with the id of the first
(ids come from an `EventMark`, which the same batch keeps durable when it must move):
that is the acknowledgement the rest of the engine sees.

A write that fails (a full disk: `ENOSPC`, or `EIO`) starts an *outage*: what the batch
did not write is queued again, in order, and retried with a capped exponential backoff
(`RETRY_S`) until a write succeeds. Meanwhile `durable()` answers `Unavailable` at once
(nothing more is acknowledged), `written()` keeps waiting (an attempt acts only once its
record is on disk), `on_outage` lets the engine forget what no caller was told of, and
`on_recover` says when writes work again. See docs/orchestrator.md, "Disk full".
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import shutil
from collections.abc import Callable, Collection
from pathlib import Path
from typing import TYPE_CHECKING, Any

from daemons.orchestrator.durability.disk import OS_DISK, Disk, describe, fsync_dir
from daemons.orchestrator.durability.journal import JournalFile, encode
from daemons.orchestrator.durability.watermark import EventMark
from registry.errors import Unavailable

if TYPE_CHECKING:
    from daemons.orchestrator.engine.records import Record, SnapshotRecord, SummaryRecord

log = logging.getLogger("prvng.orchestrator.commit")

SnapshotMaker = Callable[[], "tuple[SnapshotRecord, SummaryRecord | None]"]
OnCommit = Callable[[list[Any], int], None]
"""Called with a durable batch's events and the id of the first one."""
RETRY_S = (0.05, 5.0)
"""First and longest wait between write attempts in an outage (doubling in between)."""


class GroupCommitter:
    """The only writer of journal files (appends and checkpoints alike)."""

    def __init__(
        self,
        on_commit: OnCommit,
        marks: EventMark,
        *,
        disk: Disk = OS_DISK,
        on_outage: Callable[[], None] = lambda: None,
        on_recover: Callable[[], None] = lambda: None,
        retry_s: tuple[float, float] = RETRY_S,
    ) -> None:
        self._on_commit = on_commit
        self._marks = marks
        self._disk = disk
        self._on_outage = on_outage
        self._on_recover = on_recover
        self._retry_s = retry_s
        self._pending: dict[JournalFile, list[bytes]] = {}
        self._events: list[Any] = []
        self._checkpoints: dict[JournalFile, SnapshotMaker] = {}
        self._removals: list[tuple[JournalFile, Path]] = []
        self._batch: asyncio.Future[None] | None = None
        self._inflight: asyncio.Future[None] | None = None
        self._wake = asyncio.Event()
        self._closing = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self.outage: Unavailable | None = None
        """Why the journal cannot be written right now (None while it can)."""
        self.batches = 0
        self.records = 0
        self.outages = 0

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="journal-writer")

    def append(self, journal: JournalFile, record: Record, event: Any = None) -> None:
        """Queue `record` (kept through an outage); `event` is published once it is durable."""
        self.append_line(journal, encode(record), event)

    def append_line(self, journal: JournalFile, line: bytes, event: Any = None) -> None:
        """Queue a record `encode`d already (a big one, off the event loop)."""
        chunks = self._pending.get(journal)
        if chunks is None:
            self._pending[journal] = [line]
        else:
            chunks.append(line)
        if event is not None:
            self._events.append(event)
        self._signal()

    def checkpoint(self, journal: JournalFile, make_snapshot: SnapshotMaker) -> None:
        """Snapshot at the next batch (made then, so it covers every queued record)."""
        self._checkpoints[journal] = make_snapshot
        self._signal()

    def remove(self, journal: JournalFile, work_dir: Path) -> None:
        """Delete a workflow's files after everything queued before (retention)."""
        self._removals.append((journal, work_dir))
        self._signal()

    def discard(self, journals: Collection[JournalFile], drop: Callable[[Any], bool]) -> None:
        """Forget the queued writes to `journals` and the events `drop` picks (an outage
        kept their workflows from ever being acknowledged)."""
        for journal in journals:
            self._pending.pop(journal, None)
            self._checkpoints.pop(journal, None)
        self._events = [event for event in self._events if not drop(event)]

    async def durable(self) -> None:
        """Return once everything appended so far is on disk; `Unavailable` in an outage,
        or when the batch holding it fails (so a caller is answered only with what lasts)."""
        if self.outage is not None:
            raise self.outage
        # Batches complete in order: the queued one (if any) finishes after the one in flight.
        batch = self._batch or self._inflight
        if batch is not None and not batch.done():
            await asyncio.shield(batch)

    async def written(self) -> None:
        """Like `durable`, but waits out an outage: what a failed batch held is written by
        a later one (`Unavailable` only if the committer stops first)."""
        while True:
            batch = self._batch or self._inflight
            if batch is None:
                return
            try:
                await asyncio.shield(batch)
                return
            except Unavailable:
                if self._task is None or self._closing.is_set():
                    raise
                # queued again: the next batch (a new future) carries it

    async def close(self) -> None:
        """Flush what is queued (in an outage: try once more), then stop the writer."""
        if self._task is None:
            return
        self._closing.set()
        self._wake.set()
        await self._task
        self._task = None
        if self.outage is not None:
            left = sum(len(chunks) for chunks in self._pending.values())
            log.error(
                "stopping with %d journal records unwritten (%s); the attempts they record "
                "run again at the next start",
                left,
                self.outage.details.get("reason"),
            )
            self._fail_waiters(self._batch, self._inflight)
        self._batch = None

    def _signal(self) -> None:
        if self._batch is None:
            self._batch = asyncio.get_running_loop().create_future()
            self._wake.set()

    async def _run(self) -> None:
        delay = self._retry_s[0]
        while True:
            await self._wake.wait()
            self._wake.clear()
            if self._batch is not None:
                if await self._commit_batch():
                    delay = self._retry_s[0]
                elif not self._closing.is_set():
                    with contextlib.suppress(TimeoutError):  # close() cuts the wait short
                        await asyncio.wait_for(self._closing.wait(), delay)
                    delay = min(2 * delay, self._retry_s[1])
                    self._wake.set()
                    continue
            if self._closing.is_set() and (self._batch is None or self.outage is not None):
                return

    async def _commit_batch(self) -> bool:
        """Write and sync everything queued (its own frame, so nothing outlives the batch);
        False when the disk refused it (an outage)."""
        work = _Batch(self._pending, self._checkpoints, self._removals)
        self._pending, self._checkpoints, self._removals = {}, {}, []
        events, self._events = self._events, []
        batch, self._batch = self._batch, None
        self._inflight = batch
        mark = self._marks.reserve(len(events))
        if mark is None and self.outage is not None:
            mark = self._marks.reserved  # rewritten as it is: a write that proves there is room
        records = sum(len(chunks) for chunks in work.pending.values())
        try:
            work.make_snapshots()
            await asyncio.to_thread(work.write, self._disk, self._marks, mark)
        except Exception as exc:  # whatever the cause: queue it again and retry, never hang
            self._fail(batch, exc, work, events)
            return False
        self.batches += 1
        self.records += records
        recovered = self.outage is not None
        if recovered:
            log.warning("the journal is written again: the outage is over")
            self.outage = None
        if batch is not None:
            batch.set_result(None)
        first = self._marks.hand_out(len(events), mark)
        if events:
            try:
                self._on_commit(events, first)
            except Exception:  # a subscriber's bug must not stop the journal
                log.exception("publishing committed events failed")
        if recovered:
            self._on_recover()
        return True

    def _fail(
        self, batch: asyncio.Future[None] | None, exc: Exception, work: _Batch, events: list[Any]
    ) -> None:
        """Queue again, in front and in order, what the batch did not write; refuse new
        acknowledgements until a write succeeds."""
        for journal, chunks in work.pending.items():
            newer = self._pending.pop(journal, None)
            self._pending[journal] = chunks + newer if newer else chunks
        for journal, make in work.makers.items():
            self._checkpoints.setdefault(journal, make)
        self._removals[:0] = work.removals
        self._events[:0] = events
        where = work.path or self._marks.path
        reason = describe(exc, where.parent)
        if self.outage is None:
            self.outages += 1
            log.error("journal outage: %s (writing %s); refusing new work, retrying", reason, where)
        self.outage = Unavailable(
            f"the orchestrator cannot write its journal: {reason}. Free space there (or fix "
            "the cause); the orchestrator retries by itself and takes new work again as soon "
            "as a write succeeds",
            details={"reason": reason, "path": str(where)},
        )
        queued = self._batch
        self._batch = asyncio.get_running_loop().create_future()  # the retry's
        self._inflight = None
        self._on_outage()
        self._fail_waiters(batch, queued)

    def _fail_waiters(self, *futures: asyncio.Future[None] | None) -> None:
        assert self.outage is not None
        for waiting in futures:
            if waiting is not None and not waiting.done():
                waiting.set_exception(self.outage)
                waiting.exception()  # retrieved: waiters get it from `durable()`


class _Batch:
    """One batch's writes; each step leaves the batch once done, so after a failure what
    is left is exactly what must be written again."""

    def __init__(
        self,
        pending: dict[JournalFile, list[bytes]],
        makers: dict[JournalFile, SnapshotMaker],
        removals: list[tuple[JournalFile, Path]],
    ) -> None:
        self.pending = pending
        self.makers = makers
        self.removals = removals
        self.snapshots: list[tuple[JournalFile, tuple[SnapshotRecord, SummaryRecord | None]]] = []
        self.path: Path | None = None
        """The file being written (the one that failed, after a failure)."""

    def make_snapshots(self) -> None:
        """On the loop: the runs must not change while their snapshot is taken."""
        self.snapshots = [(journal, make()) for journal, make in self.makers.items()]

    def write(self, disk: Disk, marks: EventMark, mark: int | None) -> None:
        if mark is not None:  # before the records: no id of this batch may go out unreserved
            self.path = marks.path
            marks.write(disk, mark)
        for journal in list(self.pending):
            self.path = journal.path
            journal.append(disk, self.pending[journal])
            del self.pending[journal]
        for journal, (snapshot, summary) in self.snapshots:
            self.path = journal.snapshot_path
            journal.checkpoint(disk, snapshot, summary)
            del self.makers[journal]
        if self.removals:
            # The unlinks are the deletion (made durable by the directory sync); a crash
            # before the work dirs go leaves orphans, which the next start removes.
            for journal, _ in self.removals:
                journal.remove()
            self.path = self.removals[0][0].path
            fsync_dir(self.path.parent, disk)
            for _, work_dir in self.removals:
                shutil.rmtree(work_dir, ignore_errors=True)
            self.removals = []
        self.path = None
