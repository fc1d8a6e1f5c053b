"""Per-task logs: what actions and the engine said, capped so a chatty task cannot grow
memory or the journal without bound. The newest lines are kept."""

from __future__ import annotations

from collections import deque

LOG_CAP_BYTES = 64 * 1024
LogEntry = tuple[str, str]
"""`(stream, line)`; stream is "stdout", "stderr" or "info"."""


class TaskLog:
    """A bounded tail of log lines (counted in bytes of text)."""

    __slots__ = ("dropped_bytes", "entries", "size")

    def __init__(self) -> None:
        self.entries: deque[LogEntry] = deque()
        self.size = 0
        self.dropped_bytes = 0

    def add(self, stream: str, text: str) -> None:
        for line in text.splitlines() or [""]:
            if len(line) > LOG_CAP_BYTES:
                self.dropped_bytes += len(line) - LOG_CAP_BYTES
                line = line[-LOG_CAP_BYTES:]
            self.entries.append((stream, line))
            self.size += len(line)
        while self.size > LOG_CAP_BYTES:
            _, old = self.entries.popleft()
            self.size -= len(old)
            self.dropped_bytes += len(old)

    def tail(self, lines: int | None = None) -> list[LogEntry]:
        if lines is None:
            return list(self.entries)
        return list(self.entries)[-lines:] if lines > 0 else []


class AttemptLog:
    """The log sink of one attempt: its lines, readable while it runs, journaled with its
    outcome record (which moves them into the task's log). Allocates nothing until used."""

    __slots__ = ("new",)

    def __init__(self) -> None:
        self.new: TaskLog | None = None

    def __call__(self, stream: str, text: str) -> None:
        if self.new is None:
            self.new = TaskLog()
        self.new.add(stream, text)

    def entries(self) -> list[list[str]]:
        return [] if self.new is None else [[s, line] for s, line in self.new.entries]
