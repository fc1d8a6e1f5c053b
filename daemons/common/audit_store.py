"""The audit index in SurrealDB (table `audit`), written in batches off the caller's path.

`record` only appends to a bounded in-memory queue; a background task writes what is
queued in short batches (`DEFAULT_BATCH`, in order, one after another), at most every
`LINGER_S` (`INSERT IGNORE` keyed by event id, so a retried batch never writes a record
twice), and `aclose` writes what is left. A reader
first writes what is queued, so a caller always finds its own last call.

When the queue is full (the store is down, or slower than the calls) a new record is not
queued: the call is never blocked. The record is not lost silently either: it is counted
(`dropped`), logged, already in the JSONL tail file (the fan-out writes that first, on
the caller's path), and once the store takes writes again an `audit.gap` record says how
many records the index is missing and from when.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from daemons.common.state import StateStore
from registry.audit import AuditRecord, args_digest
from registry.trace import new_trace_id

log = logging.getLogger("prvng.audit")

TABLE = "audit"
GAP_TOOL = "audit.gap"
DEFAULT_MAX_QUEUE = 10_000
DEFAULT_BATCH = 25
"""Rows per insert. Encoding a batch (the SDK's pure-Python CBOR, ~12 µs a row) holds the
GIL, so a writer thread would not spare the loop: it would wait for the GIL instead (see
docs/audit.md). Slices of 25 keep each hold to ~0.3 ms, calls run between them, and the
engine's cost per row is within ~10 % of a 100-row insert (`make bench`: at 100 rows the
p99 of a call while the index is written was ~8 ms above the tail alone; at 25, none)."""
LINGER_S = 0.02
"""How long the writer lets records gather before a batch: one insert per burst of calls,
not per call (a reader, and closing, write what is queued at once)."""
RETRY_S = 1.0
"""Pause before writing again after a failed batch (the store may be restarting)."""
FIELDS = (
    "event_id",
    "timestamp",
    "trace_id",
    "tool",
    "risk",
    "principal",
    "outcome",
    "args_digest",
    "duration_ms",
    "source",
    "count",
    "truncated_from",
    "tier",
    "target",
    "decision",
)
_SCHEMA = f"""
DEFINE TABLE IF NOT EXISTS {TABLE} SCHEMALESS;
DEFINE INDEX IF NOT EXISTS audit_time ON {TABLE} FIELDS timestamp;
DEFINE INDEX IF NOT EXISTS audit_principal ON {TABLE} FIELDS principal;
DEFINE INDEX IF NOT EXISTS audit_tool ON {TABLE} FIELDS tool;
DEFINE INDEX IF NOT EXISTS audit_outcome ON {TABLE} FIELDS outcome;
DEFINE INDEX IF NOT EXISTS audit_trace ON {TABLE} FIELDS trace_id;
"""
"""Single-field indexes: the embedded engine (3.0.0b10) answers a range over the first field
of a compound index wrongly (`>=` loses the equal keys), which would lose records."""


@dataclass(frozen=True, slots=True)
class AuditFilter:
    """What `AuditStore.query` selects; every set field must match (tool as a regex)."""

    since: str | None = None
    """Inclusive, in the platform's timestamp text (`registry.timestamps`)."""
    until: str | None = None
    """Exclusive."""
    principal: str | None = None
    tool_regex: str | None = None
    outcome: str | None = None
    trace_id: str | None = None
    decision: str | None = None
    target: str | None = None
    event_id: str | None = None


def _row(record: AuditRecord) -> dict[str, Any]:
    """The record as stored. A NUL (a refused request's path may hold one) becomes U+FFFD:
    the engine stores it but cannot answer it, which would break every query over it."""
    row: dict[str, Any] = {"id": record.event_id}
    for name, value in record.to_dict().items():
        row[name] = value.replace("\0", "\ufffd") if isinstance(value, str) else value
    return row


class AuditStore:
    """An `AuditSink` into SurrealDB, and the queries that read it back."""

    def __init__(
        self,
        state: Callable[[], Awaitable[StateStore]],
        *,
        max_queue: int = DEFAULT_MAX_QUEUE,
        batch: int = DEFAULT_BATCH,
    ) -> None:
        if max_queue < 1 or batch < 1:
            raise ValueError("max_queue and batch must be >= 1")
        self._state = state
        self.max_queue = max_queue
        self.batch = batch
        self._queue: deque[AuditRecord] = deque()
        self._wake = asyncio.Event()
        self._stop = asyncio.Event()
        self._lock = asyncio.Lock()
        self._task: asyncio.Task[None] | None = None
        self._schema_ready = False
        self._gap_since: str | None = None
        self._gap_count = 0
        self.written = 0
        self.dropped = 0
        """Records the index never got (each is still in the JSONL tail file)."""
        self.failures = 0
        """Batches the store refused (they are retried)."""

    # -- the sink: no I/O on the caller's path ------------------------------------------

    async def record(self, record: AuditRecord) -> None:
        if len(self._queue) >= self.max_queue:
            self._drop(record)
            return
        self._queue.append(record)
        if self._task is None and not self._stop.is_set():
            self._task = asyncio.get_running_loop().create_task(self._run())
        self._wake.set()

    def _drop(self, record: AuditRecord) -> None:
        if self._gap_count == 0:
            log.warning(
                "audit index full (%d records queued): records are kept in the JSONL tail "
                "only until it drains (an audit.gap record will count them)",
                self.max_queue,
            )
            self._gap_since = record.timestamp
        self._gap_count += 1
        self.dropped += 1

    async def _run(self) -> None:
        while not self._stop.is_set():
            await self._wake.wait()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stop.wait(), LINGER_S)
            self._wake.clear()
            try:
                await self.flush()
            except Exception:  # the store is down: keep the queue, retry after a pause
                self.failures += 1
                log.exception("audit index: writing a batch failed; retrying in %gs", RETRY_S)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._stop.wait(), RETRY_S)  # or until closing
                self._wake.set()

    async def flush(self) -> None:
        """Write every queued record now (and the gap record, if records were dropped)."""
        async with self._lock:
            while self._queue or self._gap_count:
                if not self._queue:
                    await self._insert([_row(self._gap_record())])
                    self._gap_count, self._gap_since = 0, None
                    continue
                batch = [self._queue[i] for i in range(min(self.batch, len(self._queue)))]
                await self._insert([_row(r) for r in batch])
                for _ in batch:  # only once written: a failed batch stays queued
                    self._queue.popleft()
                self.written += len(batch)

    def _gap_record(self) -> AuditRecord:
        return AuditRecord.new(
            timestamp=self._gap_since or "",
            trace_id=new_trace_id(),
            tool=GAP_TOOL,
            risk="read",
            principal=None,
            outcome="dropped",
            args_digest=args_digest(None),
            duration_ms=0.0,
            count=self._gap_count,
        )

    async def _store(self) -> StateStore:
        store = await self._state()
        if not self._schema_ready:
            await store.query(_SCHEMA)
            self._schema_ready = True
        return store

    async def _insert(self, rows: list[dict[str, Any]]) -> None:
        store = await self._store()
        await store.query(f"INSERT IGNORE INTO {TABLE} $rows RETURN NONE", {"rows": rows})

    async def aclose(self) -> None:
        """Stop the writer and write what is left; what cannot be written is counted.

        The writer finishes its batch rather than being cancelled inside a database call."""
        self._stop.set()
        self._wake.set()
        task, self._task = self._task, None
        if task is not None:
            await asyncio.gather(task, return_exceptions=True)
        try:
            await self.flush()
        except Exception:
            log.exception(
                "audit index: %d records could not be written at close "
                "(they are in the JSONL tail file)",
                len(self._queue),
            )
            self.dropped += len(self._queue)
            self._queue.clear()
        self._stop.clear()  # a record after this starts a writer again, never waits unseen
        self._schema_ready = False  # the next store may be a new (mem://) one

    # -- reading ---------------------------------------------------------------------

    async def query(
        self, where: AuditFilter, *, after: tuple[str, str] | None = None, limit: int = 50
    ) -> list[dict[str, Any]]:
        """Matching records in (timestamp, event_id) order, after the cursor `after`."""
        await self.flush()
        clauses: list[str] = []
        params: dict[str, Any] = {"limit": limit}
        for name, clause in (
            ("since", "timestamp >= $since"),
            ("until", "timestamp < $until"),
            ("principal", "principal = $principal"),
            ("outcome", "outcome = $outcome"),
            ("trace_id", "trace_id = $trace_id"),
            ("decision", "decision = $decision"),
            ("target", "target = $target"),
            ("event_id", "event_id = $event_id"),
            ("tool_regex", "string::matches(tool, $tool_regex)"),
        ):
            value = getattr(where, name)
            if value is not None:
                clauses.append(clause)
                params[name] = value
        if after is not None:
            clauses.append("(timestamp > $at OR (timestamp = $at AND event_id > $after))")
            params["at"], params["after"] = after
        sql = f"SELECT * OMIT id FROM {TABLE}"
        if clauses:
            sql += " WHERE " + " AND ".join(clauses)
        sql += " ORDER BY timestamp, event_id LIMIT $limit"
        rows = await (await self._store()).query(sql, params)
        return [{name: row.get(name) for name in FIELDS} for row in rows or []]


__all__ = ["GAP_TOOL", "AuditFilter", "AuditStore"]
