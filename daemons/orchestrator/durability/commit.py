"""Group commit: one writer task makes journal records durable in batches.

Records are queued with `append` (cheap, synchronous); the writer takes everything queued,
writes it and fdatasyncs each dirty file once, in a worker thread, while the loop goes on
queueing the next batch. `durable()` waits for the batch holding every record appended
so far, so callers act on a change only once it would survive a crash. Events attached to
records are handed to `on_commit` after their batch is durable, with the id of the first
(ids come from an `EventMark`, which the same batch keeps durable when it must move):
that is the acknowledgement the rest of the engine sees.
"""

from __future__ import annotations

import asyncio
import logging
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from daemons.orchestrator.durability.journal import JournalFile, encode, fsync_dir
from daemons.orchestrator.durability.watermark import EventMark
from registry.errors import Unavailable

if TYPE_CHECKING:
    from daemons.orchestrator.engine.records import Record, SnapshotRecord, SummaryRecord

log = logging.getLogger("prvng.orchestrator.commit")

SnapshotMaker = Callable[[], "tuple[SnapshotRecord, SummaryRecord | None]"]
OnCommit = Callable[[list[Any], int], None]
"""Called with a durable batch's events and the id of the first one."""


class GroupCommitter:
    """The only writer of journal files (appends and checkpoints alike)."""

    def __init__(self, on_commit: OnCommit, marks: EventMark) -> None:
        self._on_commit = on_commit
        self._marks = marks
        self._pending: dict[JournalFile, list[bytes]] = {}
        self._events: list[Any] = []
        self._checkpoints: dict[JournalFile, SnapshotMaker] = {}
        self._removals: list[tuple[JournalFile, Path]] = []
        self._batch: asyncio.Future[None] | None = None
        self._inflight: asyncio.Future[None] | None = None
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self.error: Unavailable | None = None
        self.batches = 0
        self.records = 0

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="journal-writer")

    def append(self, journal: JournalFile, record: Record, event: Any = None) -> None:
        """Queue `record`; `event` is published once the record is durable."""
        if self.error is not None:
            raise self.error
        chunks = self._pending.get(journal)
        if chunks is None:
            self._pending[journal] = [encode(record)]
        else:
            chunks.append(encode(record))
        if event is not None:
            self._events.append(event)
        self._signal()

    def checkpoint(self, journal: JournalFile, make_snapshot: SnapshotMaker) -> None:
        """Snapshot at the next batch (made then, so it covers every queued record)."""
        if self.error is not None:
            raise self.error
        self._checkpoints[journal] = make_snapshot
        self._signal()

    def remove(self, journal: JournalFile, work_dir: Path) -> None:
        """Delete a workflow's files after everything queued before (retention)."""
        if self.error is not None:
            raise self.error
        self._removals.append((journal, work_dir))
        self._signal()

    async def durable(self) -> None:
        """Return once everything appended so far is on disk."""
        if self.error is not None:
            raise self.error
        # Batches complete in order: the queued one (if any) finishes after the one in flight.
        batch = self._batch or self._inflight
        if batch is not None and not batch.done():
            await asyncio.shield(batch)

    async def close(self) -> None:
        """Flush what is queued, then stop the writer."""
        if self._task is None:
            return
        if self.error is None:
            await self.durable()
        self._task.cancel()
        await asyncio.gather(self._task, return_exceptions=True)
        self._task = None

    def _signal(self) -> None:
        if self._batch is None:
            self._batch = asyncio.get_running_loop().create_future()
            self._wake.set()

    async def _run(self) -> None:
        while self.error is None:
            await self._wake.wait()
            self._wake.clear()
            await self._commit_batch()

    async def _commit_batch(self) -> None:
        """Write and sync everything queued (its own frame, so nothing outlives the batch)."""
        pending, self._pending = self._pending, {}
        events, self._events = self._events, []
        makers, self._checkpoints = self._checkpoints, {}
        removals, self._removals = self._removals, []
        batch, self._batch = self._batch, None
        self._inflight = batch
        mark = self._marks.reserve(len(events))
        try:
            snapshots = [(journal, make()) for journal, make in makers.items()]
            await asyncio.to_thread(_write_batch, pending, snapshots, removals, self._marks, mark)
        except Exception as exc:  # nothing is durable any more: fail loudly, never hang
            self._fail(batch, exc)
            return
        self.batches += 1
        self.records += sum(len(chunks) for chunks in pending.values())
        if batch is not None:
            batch.set_result(None)
        first = self._marks.hand_out(len(events), mark)
        if events:
            try:
                self._on_commit(events, first)
            except Exception:  # a subscriber's bug must not stop the journal
                log.exception("publishing committed events failed")

    def _fail(self, batch: asyncio.Future[None] | None, exc: Exception) -> None:
        detail = f"{type(exc).__name__}: {exc}"
        self.error = Unavailable(
            f"cannot write the orchestrator journal ({detail}); free disk space or fix the "
            "journal directory's permissions, then restart the orchestrator",
            details={"error": detail},
        )
        log.error("journal writer stopped: %s", detail)
        for waiting in (batch, self._batch):
            if waiting is not None and not waiting.done():
                waiting.set_exception(self.error)
                waiting.exception()  # retrieved: waiters get it from `durable()`
        self._batch = None


def _write_batch(
    pending: dict[JournalFile, list[bytes]],
    snapshots: list[tuple[JournalFile, tuple[SnapshotRecord, SummaryRecord | None]]],
    removals: list[tuple[JournalFile, Path]],
    marks: EventMark,
    mark: int | None,
) -> None:
    if mark is not None:  # before the records: no id of this batch may go out unreserved
        marks.write(mark)
    for journal, chunks in pending.items():
        journal.append(chunks)
    for journal, (snapshot, summary) in snapshots:
        journal.checkpoint(snapshot, summary)
    if removals:
        # The unlinks are the deletion (made durable by the directory sync); a crash before
        # the work dirs go leaves orphans, which the next start removes.
        for journal, _ in removals:
            journal.remove()
        fsync_dir(removals[0][0].path.parent)
        for _, work_dir in removals:
            shutil.rmtree(work_dir, ignore_errors=True)
