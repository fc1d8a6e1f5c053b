"""The disk seam: every write and sync of the journal goes through a `Disk`.

Production uses `OS_DISK` (`os.write`, `os.fsync`, `os.fdatasync`); a test passes a `Disk`
of its own (a real one with a switch, say one that answers `ENOSPC` for a while) to see
what the engine does when the disk fills up. `write_all` finishes short writes: `os.write`
may write fewer bytes than asked (a signal, a nearly full disk), and a journal line must
never stay half-written when the call returned.
"""

from __future__ import annotations

import errno
import os
from pathlib import Path
from typing import Protocol


class Disk(Protocol):
    """The system calls the journal writes with (blocking: called in a worker thread)."""

    def write(self, fd: int, data: memoryview) -> int:
        """Write a prefix of `data`; how many bytes were written (an `OSError` on failure)."""
        ...

    def fsync(self, fd: int) -> None: ...

    def fdatasync(self, fd: int) -> None: ...


class OsDisk:
    """The real disk."""

    def write(self, fd: int, data: memoryview) -> int:
        return os.write(fd, data)

    def fsync(self, fd: int) -> None:
        os.fsync(fd)

    def fdatasync(self, fd: int) -> None:
        os.fdatasync(fd)


OS_DISK = OsDisk()


def write_all(disk: Disk, fd: int, data: bytes) -> None:
    """Write all of `data`, however many calls it takes."""
    view = memoryview(data)
    while view:
        written = disk.write(fd, view)
        if written <= 0:  # a disk that writes nothing and says no error: treat it as full
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        view = view[written:]


def fsync_dir(path: Path, disk: Disk = OS_DISK) -> None:
    """Make a file creation or rename in `path` durable."""
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        disk.fsync(fd)
    finally:
        os.close(fd)


def replace_file(path: Path, data: bytes, disk: Disk = OS_DISK) -> None:
    """Replace `path` with `data` (temp file, fsync, rename), so a reader sees the old
    file or the new one; the temp file goes when the write fails."""
    tmp = path.with_name(f".{path.name}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        write_all(disk, fd, data)
        disk.fsync(fd)
    except BaseException:
        os.close(fd)
        tmp.unlink(missing_ok=True)
        raise
    os.close(fd)
    tmp.replace(path)


def describe(exc: BaseException, path: Path) -> str:
    """What went wrong writing under `path`, in words a user can act on."""
    if isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return f"the disk is full at {path} ({os.strerror(exc.errno)})"
    if isinstance(exc, OSError) and exc.errno is not None:
        return f"cannot write at {path}: {os.strerror(exc.errno)}"
    return f"cannot write at {path}: {type(exc).__name__}: {exc}"
