"""Per-task logs: what actions and the engine said, capped so a chatty task cannot grow
memory, the journal or a `/logs` answer without bound. The newest lines are kept.

The cap counts every entry's overhead as well as its text, so a flood of empty lines is
bounded too (`yes "" | head -n 3000000` once kept three million entries).
"""

from __future__ import annotations

from collections import deque

LOG_CAP_BYTES = 64 * 1024
ENTRY_OVERHEAD_BYTES = 16
"""What one entry costs beyond its text (its tuple in memory, `["stdout",""],` on disk)."""
LOG_CAP_ENTRIES = LOG_CAP_BYTES // ENTRY_OVERHEAD_BYTES
LogEntry = tuple[str, str]
"""`(stream, line)`; stream is "stdout", "stderr" or "info"."""


class TaskLog:
    """A bounded tail of log lines: at most `LOG_CAP_BYTES` counting each entry's overhead
    (hence at most `LOG_CAP_ENTRIES` lines)."""

    __slots__ = ("dropped_bytes", "dropped_lines", "entries", "size")

    def __init__(self) -> None:
        self.entries: deque[LogEntry] = deque()
        self.size = 0
        self.dropped_bytes = 0
        self.dropped_lines = 0
        """Lines dropped from the front: the absolute number of `entries[0]`."""

    def add(self, stream: str, text: str) -> None:
        entries = self.entries
        room = LOG_CAP_BYTES - ENTRY_OVERHEAD_BYTES
        for line in text.splitlines() or [""]:
            size = len(line.encode())
            if size > room:
                kept = line.encode()[-room:].decode(errors="ignore")
                self.dropped_bytes += size - len(kept.encode())
                line, size = kept, len(kept.encode())
            entries.append((stream, line))
            self.size += size + ENTRY_OVERHEAD_BYTES
            while self.size > LOG_CAP_BYTES:
                _, old = entries.popleft()
                old_size = len(old.encode())
                self.size -= old_size + ENTRY_OVERHEAD_BYTES
                self.dropped_bytes += old_size
                self.dropped_lines += 1


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
