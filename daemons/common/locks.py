"""Single-owner directories: the embedded state store and the orchestrator journal."""

from __future__ import annotations

import fcntl
import os
from pathlib import Path

from daemons.common.files import private_dir
from registry.errors import Unavailable


class OwnerLock:
    """An exclusive `flock` on `<directory>/.lock` that records the holder's pid, so a
    second opener fails at once with a message naming who holds it."""

    def __init__(self, directory: Path, *, what: str, hint: str) -> None:
        self.path = private_dir(directory) / ".lock"
        self._what = what
        self._hint = hint
        self._fd: int | None = None

    def acquire(self) -> None:
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.read(fd, 32).decode(errors="replace").strip() or "another process"
            os.close(fd)
            raise Unavailable(
                f"{self._what} {self.path.parent} is in use by pid {holder}; {self._hint}",
                details={"path": str(self.path.parent), "holder": holder},
            ) from None
        os.ftruncate(fd, 0)
        os.write(fd, str(os.getpid()).encode())
        self._fd = fd

    @property
    def held(self) -> bool:
        return self._fd is not None

    def release(self) -> None:
        if self._fd is not None:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None
