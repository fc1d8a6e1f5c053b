"""The on-disk form of a workflow: an append-only journal plus an optional snapshot.

A record is one line, `<crc32 as 8 hex digits> <compact JSON>\\n`, so a crash that tears
the last write leaves a line that is short, unparsable or fails its checksum. Readers
stop at the first such line and cut the file there: it was never acknowledged, because
acknowledgement waits for the fsync of the whole batch.

A snapshot (`<id>.snapshot`, one record in the same format, replaced by atomic rename)
holds the state up to journal sequence number `seq`; journal records at or below it are
already in the snapshot and are skipped, so a crash between writing the snapshot and
truncating the journal loses nothing. A finished workflow's snapshot file starts with a
one-line summary (`read_summary`), which is all a restart reads of it.
"""

from __future__ import annotations

import json
import logging
import os
import zlib
from pathlib import Path
from typing import TYPE_CHECKING, cast

from daemons.orchestrator.durability.disk import Disk, fsync_dir, replace_file, write_all

log = logging.getLogger("prvng.orchestrator.journal")

JOURNAL_SUFFIX = ".journal"
SNAPSHOT_SUFFIX = ".snapshot"

if TYPE_CHECKING:  # the engine defines the records; the journal only stores them
    from daemons.orchestrator.engine.records import Record, SnapshotRecord, SummaryRecord
_ENCODER = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False, check_circular=False)


def encode(record: Record) -> bytes:
    """One journal line for `record`."""
    payload = _ENCODER.encode(record).encode()
    return b"%08x %s\n" % (zlib.crc32(payload), payload)


def decode(line: bytes) -> Record | None:
    """The record on `line` (without its newline), or None when it is torn or corrupt."""
    if len(line) < 10 or line[8:9] != b" ":
        return None
    payload = line[9:]
    try:
        if int(line[:8], 16) != zlib.crc32(payload):
            return None
        record = json.loads(payload)
    except ValueError:
        return None
    if not isinstance(record, dict):
        return None
    return cast("Record", record)  # its shape is checked where it is applied


class JournalFile:
    """One workflow's journal file. Blocking methods: the committer calls them in a thread."""

    __slots__ = ("exists", "path", "snapshot_path")

    def __init__(self, directory: Path, workflow_id: str, *, new: bool = False) -> None:
        """`new`: the journal of a workflow being submitted, which cannot exist yet (a
        known id is answered before a draft is taken): no `stat` per submit."""
        self.path = directory / f"{workflow_id}{JOURNAL_SUFFIX}"
        self.snapshot_path = directory / f"{workflow_id}{SNAPSHOT_SUFFIX}"
        self.exists = False if new else self.path.exists()

    def append(self, disk: Disk, chunks: list[bytes]) -> None:
        """Append and fdatasync; a new file also gets its directory entry synced. When any
        of it fails the file is cut back to where it was (a new one removed), so no torn
        or unsynced record stays behind to be written twice."""
        new = not self.exists
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        try:
            start = os.fstat(fd).st_size
            try:
                write_all(disk, fd, b"".join(chunks))
                disk.fdatasync(fd)
                if new:
                    fsync_dir(self.path.parent, disk)
            except BaseException:
                self._cut_back(fd, start, new)
                raise
        finally:
            os.close(fd)
        self.exists = True

    def _cut_back(self, fd: int, start: int, new: bool) -> None:
        try:
            if new and start == 0:
                self.path.unlink(missing_ok=True)
            else:
                os.ftruncate(fd, start)  # shrinking needs no free space
        except OSError as exc:  # recovery cuts a torn tail off all the same
            log.error("journal %s: cannot cut it back to %d bytes: %s", self.path, start, exc)

    def checkpoint(
        self, disk: Disk, snapshot: SnapshotRecord, summary: SummaryRecord | None = None
    ) -> None:
        """Replace the snapshot (after its summary, if any) atomically, then empty the
        journal it now covers."""
        data = (b"" if summary is None else encode(summary)) + encode(snapshot)
        replace_file(self.snapshot_path, data, disk)
        fsync_dir(self.snapshot_path.parent, disk)
        if self.exists:
            fd = os.open(self.path, os.O_WRONLY)
            try:
                os.ftruncate(fd, 0)
                disk.fsync(fd)
            finally:
                os.close(fd)

    def read_snapshot(self) -> SnapshotRecord | None:
        try:
            data = self.snapshot_path.read_bytes()
        except FileNotFoundError:
            return None
        record = decode(data.rstrip(b"\n").rpartition(b"\n")[2])  # after a summary line
        if record is None:
            log.error("snapshot %s is corrupt; ignoring it", self.snapshot_path)
        return cast("SnapshotRecord | None", record)  # a snapshot file holds nothing else

    def read_summary(self) -> SummaryRecord | None:
        """The summary line of a finished workflow whose journal holds nothing after its
        snapshot; None for anything else (which must be loaded in full)."""
        try:
            if self.path.stat().st_size:
                return None
        except FileNotFoundError:
            pass
        try:
            with self.snapshot_path.open("rb") as f:
                record = decode(f.readline().rstrip(b"\n"))
        except FileNotFoundError:
            return None
        if record is None or record.get("k") != "summary":
            return None
        return cast("SummaryRecord", record)

    def read_records(self) -> list[Record]:
        """Every intact record, in order; a torn or corrupt tail is cut off the file."""
        try:
            data = self.path.read_bytes()
        except FileNotFoundError:
            return []
        records: list[Record] = []
        pos = 0
        size = len(data)
        while pos < size:
            end = data.find(b"\n", pos)
            if end < 0:
                break
            record = decode(data[pos:end])
            if record is None:
                break
            records.append(record)
            pos = end + 1
        if pos < size:
            log.warning(
                "journal %s: ignoring a torn tail of %d bytes at offset %d (a crash mid-write)",
                self.path,
                size - pos,
                pos,
            )
            os.truncate(self.path, pos)
        return records

    def remove(self) -> None:
        self.path.unlink(missing_ok=True)
        self.snapshot_path.unlink(missing_ok=True)


def workflow_ids(directory: Path) -> list[str]:
    """Ids of every workflow with a journal or snapshot in `directory`."""
    ids = {
        p.name.removesuffix(suffix)
        for suffix in (JOURNAL_SUFFIX, SNAPSHOT_SUFFIX)
        for p in directory.glob(f"*{suffix}")
        if not p.name.startswith(".")
    }
    return sorted(ids)
