"""Small, careful file helpers: private directories, atomic writes, secret files.

Standard library only: the CLI's fast start-up path imports this module.

    UnsafePath (PermissionError)   a symlink (or a non-directory) where a private
                                   directory must be: never followed
"""

from __future__ import annotations

import errno
import fcntl
import json
import os
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any

_NO_FOLLOW_DIR = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW


class UnsafePath(PermissionError):
    """A symlink or a non-directory stands where a private directory must be."""

    def __init__(self, path: Path) -> None:
        super().__init__(
            f"{path} is a symlink or not a directory; the platform never follows symlinks "
            "inside its data directory: remove it (and check who planted it)"
        )
        self.path = path


def private_dir(path: Path, *, home: Path | None = None) -> Path:
    """Create `path` and every missing parent 0700 whatever the umask, and make `path` 0700.

    A symlink at `path` is never followed (`UnsafePath`); with `home` (PRVNG_HOME), no
    component below it either, and `home` and each of them are made 0700 when ours, so a
    group-writable tree left by an old umask is closed again. Walks with `O_NOFOLLOW`
    relative to the parent's descriptor, so a link swapped in meanwhile is not followed.
    """
    here = path.parent if home is None else home
    parts = path.relative_to(here).parts  # ValueError: `path` must lie below `home`
    _make_parents(here)
    fd = os.open(here, os.O_RDONLY | os.O_DIRECTORY)
    try:
        if home is not None:
            _tighten(fd)
        for part in parts:
            child = _step(fd, part, here)
            os.close(fd)
            fd, here = child, here / part
    finally:
        os.close(fd)
    return path


class PrivateChildren:
    """Private directories side by side in one parent (a workspace per workflow): the
    parent is made and checked by `private_dir` once, then each child costs one `mkdir`
    and a no-follow open relative to the parent's descriptor (a fifth of the calls)."""

    def __init__(self, parent: Path, *, home: Path | None = None) -> None:
        self.parent = parent
        self._home = home
        self._checked = False

    def make(self, name: str) -> Path:
        """`parent/name`, a private directory (made if missing); `UnsafePath` for a link."""
        for _ in range(2):
            if not self._checked:
                private_dir(self.parent, home=self._home)
                self._checked = True
            try:
                fd = os.open(self.parent, _NO_FOLLOW_DIR)
            except FileNotFoundError:  # removed since it was checked: made again
                self._checked = False
                continue
            except OSError as exc:
                if exc.errno in (errno.ELOOP, errno.ENOTDIR):
                    raise UnsafePath(self.parent) from None
                raise
            try:
                os.close(_step(fd, name, self.parent))
            finally:
                os.close(fd)
            return self.parent / name
        raise FileNotFoundError(errno.ENOENT, "removed while being made", str(self.parent))


def _make_parents(path: Path) -> None:
    """Create the missing directories of `path`, each 0700 (mkdir's mode obeys the umask)."""
    missing = []
    while not path.exists():
        missing.append(path)
        path = path.parent
    for directory in reversed(missing):
        try:
            directory.mkdir(0o700)
        except FileExistsError:  # created meanwhile: checked by the walk that follows
            continue
        directory.chmod(0o700)


def _step(parent_fd: int, name: str, parent: Path) -> int:
    """Open (creating it 0700) directory `name` in `parent_fd` without following a link."""
    with suppress(FileExistsError):
        os.mkdir(name, 0o700, dir_fd=parent_fd)
    try:
        fd = os.open(name, _NO_FOLLOW_DIR, dir_fd=parent_fd)
    except OSError as exc:
        if exc.errno in (errno.ELOOP, errno.ENOTDIR):
            raise UnsafePath(parent / name) from None
        raise
    _tighten(fd)
    return fd


def _tighten(fd: int) -> None:
    st = os.fstat(fd)
    if st.st_uid == os.geteuid() and st.st_mode & 0o777 != 0o700:
        os.fchmod(fd, 0o700)


def atomic_write(path: Path, data: bytes, mode: int = 0o600) -> None:
    """Write `data` so readers see the old file or the new one, never half of one."""
    private_dir(path.parent)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    try:
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)
    tmp.replace(path)


def atomic_write_json(path: Path, value: Any, mode: int = 0o600) -> None:
    atomic_write(path, json.dumps(value, indent=2, sort_keys=True).encode() + b"\n", mode)


def create_secret_file(path: Path, secret: str) -> bool:
    """Create a 0600 file holding `secret`; False if it already exists (never overwrites)."""
    private_dir(path.parent)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return False
    try:
        os.write(fd, secret.encode() + b"\n")
        os.fsync(fd)
    finally:
        os.close(fd)
    return True


def pid_alive(pid: int) -> bool:
    """True while `pid` exists and has not exited (an exited, unreaped zombie counts as gone)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return False
    except OSError:  # no /proc here: ask the kernel directly
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            return True
        return True
    return stat[stat.rindex(")") + 2] not in "ZX"  # the name may hold spaces and ')'


@contextmanager
def file_lock(path: Path) -> Iterator[None]:
    """Hold an exclusive `flock` on `path` (created 0600) for the block, across processes."""
    private_dir(path.parent)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)
