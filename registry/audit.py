"""Audit records: who called what, when, with which outcome.

The pipeline writes one record per mutation (any outcome) and per refused call (any
tool). Arguments are recorded as a digest, never in clear, since they may hold secrets.
A `FanOutSink` hands each record to several sinks (the JSONL tail file, the SurrealDB
index, later NATS `ops.audit.>`); one failing sink never fails the call. The local log
rotates by size and age and keeps a bounded number of rotated files, so no caller,
authenticated or not, can fill the disk through it.
"""

from __future__ import annotations

import asyncio
import hashlib
import inspect
import json
import logging
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass, fields
from datetime import datetime
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from registry.canonical import canonical_json, sha256_digest

log = logging.getLogger("prvng.audit")

DEFAULT_MAX_BYTES = 10 << 20
DEFAULT_MAX_AGE_S = 7 * 86400.0
DEFAULT_RETENTION = 10


def args_digest(args: Any) -> str:
    """A stable SHA-256 of the canonical JSON form of a call's arguments."""
    return sha256_digest(args)


async def big_args_digest(args: dict[str, Any], step: int = 200) -> str:
    """`args_digest` of a big input, in bounded steps: its long top-level lists are
    encoded `step` items at a time (the event loop runs in between); the bytes hashed
    are exactly those `args_digest` hashes."""
    if not all(type(key) is str for key in args):
        return args_digest(args)
    digest = hashlib.sha256(b"{")
    for i, key in enumerate(sorted(args)):
        digest.update(b"%s%s:" % (b"," if i else b"", canonical_json(key)))
        value = args[key]
        if type(value) is not list or len(value) <= step:
            digest.update(canonical_json(value))
            continue
        digest.update(b"[")
        for start in range(0, len(value), step):
            if start:
                digest.update(b",")
            digest.update(canonical_json(value[start : start + step])[1:-1])
            await asyncio.sleep(0)
        digest.update(b"]")
    digest.update(b"}")
    return "sha256:" + digest.hexdigest()


@dataclass(frozen=True, slots=True)
class AuditRecord:
    """One audited call, or (with `count`) several refusals from one `source` summed up.

    The fields after `duration_ms` are optional and left out of the JSON when unset, so a
    reader of the original schema reads every record unchanged."""

    event_id: str
    timestamp: str
    trace_id: str
    tool: str
    risk: str
    principal: str | None
    outcome: str
    args_digest: str
    duration_ms: float
    source: str | None = None
    """The caller's network address, for refusals at the edge."""
    count: int | None = None
    """How many refusals this record stands for (absent: one)."""
    truncated_from: int | None = None
    """The length of `tool` before it was cut short (an attacker chooses the path)."""
    tier: str | None = None
    """The way in: `http`, `mcp-http`, `mcp-stdio`, `cli-local`, `cli-remote`."""
    target: str | None = None
    """What the call acts on (`server:web-1`, several joined by `,`); None: the tool itself."""
    decision: str | None = None
    """`allow` (the gates let it through), `deny` (a gate refused it); None: refused before
    any decision (its input was invalid)."""

    @classmethod
    def new(cls, **fields: Any) -> AuditRecord:
        return cls(event_id=os.urandom(16).hex(), **fields)

    def to_dict(self) -> dict[str, Any]:
        # Not dataclasses.asdict: its deep copy costs ~70 µs, on every audited call.
        record = {name: getattr(self, name) for name in _FIELDS}
        for name in _OPTIONAL:
            if record[name] is None:
                del record[name]
        return record


_FIELDS = tuple(f.name for f in fields(AuditRecord))
_OPTIONAL = ("source", "count", "truncated_from", "tier", "target", "decision")
ALLOW, DENY = "allow", "deny"


def _epoch(timestamp: str) -> float | None:
    try:
        return datetime.fromisoformat(timestamp).timestamp()
    except ValueError:
        return None


class AuditSink(Protocol):
    """Where audit records go (a local log here; NATS `ops.audit.*` via the mirror)."""

    async def record(self, record: AuditRecord) -> None: ...


@runtime_checkable
class ClosingSink(Protocol):
    """A sink holding work or files that the registry must flush when it closes."""

    async def aclose(self) -> None: ...


async def close_sink(sink: AuditSink) -> None:
    """Flush and close `sink` if it has anything to close (`aclose` or a plain `close`)."""
    if isinstance(sink, ClosingSink):
        await sink.aclose()
        return
    close = getattr(sink, "close", None)
    if callable(close):
        result = close()
        if inspect.isawaitable(result):
            await result


class FanOutSink:
    """Sends each record to every sink in order; a sink's error is logged and counted
    (`failures[name]`), never raised, so the audit of a call cannot fail the call."""

    def __init__(self, sinks: Sequence[AuditSink]) -> None:
        self.sinks = tuple(sinks)
        self.failures: dict[str, int] = {}

    async def record(self, record: AuditRecord) -> None:
        for sink in self.sinks:
            try:
                await sink.record(record)
            except Exception:  # one broken sink must not fail the call or starve the others
                name = type(sink).__name__
                self.failures[name] = self.failures.get(name, 0) + 1
                log.exception("audit sink %s failed on record %s", name, record.event_id)

    async def aclose(self) -> None:
        for sink in self.sinks:
            try:
                await close_sink(sink)
            except Exception:
                log.exception("audit sink %s failed to close", type(sink).__name__)


class JsonlAuditSink:
    """Appends one JSON line per record to a 0600 file (O_APPEND, so lines never interleave).

    Before a write that would take the file past `max_bytes`, or once its first record is
    older than `max_age_s`, the file becomes `<name>.1` (`.1` becomes `.2`, ...); only
    `retention` rotated files are kept. Renaming keeps each file's 0600 mode.
    """

    def __init__(
        self,
        path: Path,
        *,
        max_bytes: int = DEFAULT_MAX_BYTES,
        max_age_s: float = DEFAULT_MAX_AGE_S,
        retention: int = DEFAULT_RETENTION,
    ) -> None:
        if max_bytes < 1 or max_age_s <= 0 or retention < 0:
            raise ValueError("max_bytes and max_age_s must be > 0 and retention >= 0")
        self.path = path
        self.max_bytes = max_bytes
        self.max_age_s = max_age_s
        self.retention = retention
        self._fd: int | None = None
        self._size = 0
        self._first_at: float | None = None

    @staticmethod
    def encode(record: AuditRecord) -> bytes:
        """The record's line in the log."""
        return (json.dumps(record.to_dict(), separators=(",", ":")) + "\n").encode()

    def rotated(self, index: int) -> Path:
        return self.path.with_name(f"{self.path.name}.{index}")

    def _open(self) -> int:
        if self._fd is None:
            self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            self._fd = os.open(self.path, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o600)
            self._size = os.fstat(self._fd).st_size
            self._first_at = self._first_record_at(self._fd) if self._size else None
        return self._fd

    @staticmethod
    def _first_record_at(fd: int) -> float | None:
        """The first record's time (a file's age survives restarts; its mtime does not)."""
        head = os.pread(fd, 4096, 0).split(b"\n", 1)[0]
        try:
            return _epoch(str(json.loads(head)["timestamp"]))
        except (ValueError, KeyError, TypeError):
            return None

    def _due(self, adding: int) -> bool:
        if self._size == 0:
            return False
        too_old = self._first_at is not None and time.time() - self._first_at > self.max_age_s
        return too_old or self._size + adding > self.max_bytes

    def _rotate(self) -> None:
        self.close()
        for index in range(self.retention, 0, -1):
            source = self.path if index == 1 else self.rotated(index - 1)
            if source.exists():
                source.replace(self.rotated(index))
        if self.retention == 0:
            self.path.unlink(missing_ok=True)
        index = self.retention + 1
        while self.rotated(index).exists():  # left by a larger retention before
            self.rotated(index).unlink()
            index += 1

    async def record(self, record: AuditRecord) -> None:
        line = self.encode(record)
        self._open()
        if self._due(len(line)):
            self._rotate()
        fd = self._open()
        os.write(fd, line)
        self._size += len(line)
        if self._first_at is None:
            self._first_at = _epoch(record.timestamp) or time.time()

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

    def read(self) -> list[dict[str, Any]]:
        """Every record still kept, oldest first (for `audit` tools and tests)."""
        files = [self.rotated(i) for i in range(self.retention, 0, -1)] + [self.path]
        return [
            json.loads(line)
            for file in files
            if file.exists()
            for line in file.read_text().splitlines()
            if line
        ]
