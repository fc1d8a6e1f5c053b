"""Finding and stopping processes: whole process groups, or processes we started.

A process counts as running until it has exited: a zombie (exited, not yet reaped by its
parent, e.g. an orphan under a PID 1 that never reaps) is treated as gone, since it holds
no port, no file and no CPU. Linux `/proc` gives the precise answers; elsewhere we fall
back to `kill(pid, 0)`.
"""

from __future__ import annotations

import asyncio
import os
import signal
import time
from collections.abc import Callable, Collection, Iterable
from contextlib import suppress
from pathlib import Path
from typing import NamedTuple

from daemons.common.files import pid_alive

_PROC = Path("/proc")
_POLL_S = 0.02
_KILLED_S = 5.0
"""How long a SIGKILLed process may take to be gone before we stop waiting for it."""


def _stat(pid: int) -> tuple[str, int] | None:
    """`(state letter, process group)` from /proc/<pid>/stat; None if there is no such pid."""
    try:
        raw = (_PROC / str(pid) / "stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return None
    fields = raw[raw.rindex(")") + 2 :].split()  # the command name may hold spaces
    return fields[0], int(fields[2])


class Proc(NamedTuple):
    """A process, told apart from a later one that reuses its pid by its start time."""

    pid: int
    start: int


def start_time(pid: int) -> int | None:
    """When `pid` started (clock ticks after boot, /proc/<pid>/stat field 22); None if gone."""
    try:
        raw = (_PROC / str(pid) / "stat").read_text()
    except OSError:
        return None
    return int(raw[raw.rindex(")") + 2 :].split()[19])


def _all_pids() -> list[int]:
    return [int(p.name) for p in _PROC.iterdir() if p.name.isdigit()]


def group_members(pgid: int) -> list[int]:
    """The running processes of process group `pgid`."""
    if not _PROC.is_dir():
        try:
            os.killpg(pgid, 0)
        except (ProcessLookupError, PermissionError):
            return []
        return [pgid]
    members = []
    for pid in _all_pids():
        stat = _stat(pid)
        if stat is not None and stat[1] == pgid and stat[0] not in ("Z", "X"):
            members.append(pid)
    return members


def _environ_value(pid: int, name: bytes) -> str | None:
    try:
        environ = (_PROC / str(pid) / "environ").read_bytes()
    except OSError:  # gone meanwhile, or another user's process
        return None
    for entry in environ.split(b"\0"):
        if entry.startswith(name + b"="):
            return entry[len(name) + 1 :].decode(errors="replace")
    return None


def processes_with(name: str, values: Collection[str]) -> list[tuple[Proc, str]]:
    """Running processes (not this one) whose environment sets `name` to one of `values`."""
    if not _PROC.is_dir() or not values:
        return []
    found = []
    for pid in _all_pids():
        if pid == os.getpid() or not pid_alive(pid):
            continue
        value = _environ_value(pid, name.encode())
        start = start_time(pid)
        if value is not None and value in values and start is not None:
            found.append((Proc(pid, start), value))
    return found


def _signal_group(pgid: int, sig: signal.Signals) -> None:
    with suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)


def _signal_pid(pid: int, sig: signal.Signals) -> None:
    """Signal the whole group when `pid` leads one (a detached daemon), else just `pid`."""
    with suppress(ProcessLookupError, PermissionError):
        if os.getpgid(pid) == pid:
            os.killpg(pid, sig)
        else:
            os.kill(pid, sig)


async def _settled(done: Callable[[], bool], deadline: float) -> bool:
    """Poll `done` until it is true or `deadline` (monotonic) passes; its last answer."""
    while not done():
        if time.monotonic() >= deadline:
            return False
        await asyncio.sleep(_POLL_S)  # polling a condition with a deadline, not a fixed wait
    return True


async def terminate_group(pgid: int, grace_s: float) -> None:
    """SIGTERM process group `pgid`, SIGKILL whatever is left after `grace_s`.

    The SIGKILL is sent in `finally`, so even a second cancellation while we wait for the
    group to exit cannot leave it running.
    """
    _signal_group(pgid, signal.SIGTERM)
    gone = False
    try:
        gone = await _settled(lambda: not group_members(pgid), time.monotonic() + grace_s)
    finally:
        if not gone:
            _signal_group(pgid, signal.SIGKILL)
    if not gone:
        await _settled(lambda: not group_members(pgid), time.monotonic() + _KILLED_S)


async def stop_pids(procs: Iterable[Proc], grace_s: float) -> list[int]:
    """Stop each process (its group when it leads one): SIGTERM, then SIGKILL after `grace_s`.

    A pid is signalled only while it still has its start time, never a process that
    reused it. Returns the pids that were running when asked to stop; they are gone on return.
    """
    targets = [proc for proc in set(procs) if _running(proc)]

    def all_gone() -> bool:
        return not any(_running(proc) for proc in targets)

    for proc in targets:
        _signal_pid(proc.pid, signal.SIGTERM)
    gone = False
    try:
        gone = await _settled(all_gone, time.monotonic() + grace_s)
    finally:
        if not gone:
            for proc in targets:
                if _running(proc):
                    _signal_pid(proc.pid, signal.SIGKILL)
    await _settled(all_gone, time.monotonic() + _KILLED_S)
    return sorted(proc.pid for proc in targets)


def _running(proc: Proc) -> bool:
    return pid_alive(proc.pid) and start_time(proc.pid) == proc.start
