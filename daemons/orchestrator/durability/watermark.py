"""The event-id high-water mark: the ids an engine handed out survive its restart.

Events are numbered as their batch becomes durable, and a client resumes a stream after
the last id it saw (SSE `Last-Event-ID`); so a restarted engine must number on above
every id it ever handed out, or the client would skip the new events or read some twice.
`.event-seq` in the journal directory holds an id no event has reached yet, reserved a
block ahead: the group committer rewrites it (atomic rename, fsynced, in the batch's
worker thread) only when a batch would pass it, once per `BLOCK` events, so the mark
adds no fsync to an ordinary batch. A restart numbers on above the reservation, skipping
at most `BLOCK` ids. (The name starts with a dot: no workflow id can, see `journal`.)
"""

from __future__ import annotations

import logging
from pathlib import Path

from daemons.orchestrator.durability.disk import Disk, fsync_dir, replace_file

log = logging.getLogger("prvng.orchestrator.watermark")

MARK_FILE = ".event-seq"
BLOCK = 100_000


class EventMark:
    """Hands out event ids; `reserve` says when the file must move first."""

    def __init__(self, directory: Path, block: int = BLOCK) -> None:
        self.path = directory / MARK_FILE
        self.block = block
        self.reserved = _read(self.path)
        self.last = self.reserved
        """The newest id handed out (after a restart: everything below the reservation)."""

    def reserve(self, n: int) -> int | None:
        """The mark to make durable before `n` more ids go out, or None if it covers them."""
        upto = self.last + n
        return upto + self.block if upto > self.reserved else None

    def write(self, disk: Disk, mark: int) -> None:
        """Make `mark` durable (blocking: the committer calls it in its worker thread)."""
        replace_file(self.path, b"%d\n" % mark, disk)
        fsync_dir(self.path.parent, disk)

    def hand_out(self, n: int, mark: int | None) -> int:
        """Take `n` ids (their reservation, if any, is durable); the first one."""
        first = self.last + 1
        self.last += n
        if mark is not None:
            self.reserved = mark
        return first


def _read(path: Path) -> int:
    try:
        text = path.read_text()
    except FileNotFoundError:
        return 0  # a new journal directory: ids start at 1
    try:
        return max(0, int(text.strip()))
    except ValueError:
        log.error("%s holds %r, not an event id; numbering events from 1 again", path, text)
        return 0
