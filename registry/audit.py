"""Audit records: who called what, when, with which outcome.

The pipeline writes one record per mutation (any outcome) and per refused call (any
tool). Arguments are recorded as a digest, never in clear, since they may hold secrets.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any, Protocol


def args_digest(args: Any) -> str:
    """A stable SHA-256 of the canonical JSON form of a call's arguments."""
    canonical = json.dumps(args, sort_keys=True, separators=(",", ":"), default=str)
    return "sha256:" + hashlib.sha256(canonical.encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class AuditRecord:
    """One audited call."""

    event_id: str
    timestamp: str
    trace_id: str
    tool: str
    risk: str
    principal: str | None
    outcome: str
    args_digest: str
    duration_ms: float

    @classmethod
    def new(cls, **fields: Any) -> AuditRecord:
        return cls(event_id=os.urandom(16).hex(), **fields)

    def to_dict(self) -> dict[str, Any]:
        # Not dataclasses.asdict: its deep copy costs ~70 µs, on every audited call.
        return {name: getattr(self, name) for name in _FIELDS}


_FIELDS = tuple(f.name for f in fields(AuditRecord))


class AuditSink(Protocol):
    """Where audit records go (a local log here; NATS `ops.audit.*` via the mirror)."""

    async def record(self, record: AuditRecord) -> None: ...


class JsonlAuditSink:
    """Appends one JSON line per record to a 0600 file (O_APPEND, so lines never interleave)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._fd: int | None = None

    def _open(self) -> int:
        if self._fd is None:
            self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            self._fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        return self._fd

    async def record(self, record: AuditRecord) -> None:
        line = json.dumps(record.to_dict(), separators=(",", ":")) + "\n"
        os.write(self._open(), line.encode())

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

    def read(self) -> list[dict[str, Any]]:
        """Every record written so far (for `audit` tools and tests)."""
        if not self.path.exists():
            return []
        return [json.loads(line) for line in self.path.read_text().splitlines() if line]
