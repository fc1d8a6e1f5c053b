"""Processes the platform started for a sandbox: the only ones `server.delete` may signal.

Every script run for a sandbox gets a fresh random `PRVNG_LAUNCH` token in its
environment (inherited by all it starts, detached daemons included) and leaves a line
`{"token", "pid", "start"}` in `<sandbox>/run/launches.jsonl`, `start` being the
process's start time (/proc/<pid>/stat field 22). A process is ours when it carries a
recorded token and started no earlier than the process given it: one that merely works
in the sandbox, or a pid reused later, never matches.
"""

from __future__ import annotations

import json
import os
import secrets
from pathlib import Path

from daemons.orchestrator.actions.processes import Proc, processes_with, start_time

LAUNCH_VAR = "PRVNG_LAUNCH"
_LEDGER = Path("run") / "launches.jsonl"


def new_token() -> str:
    return secrets.token_hex(16)


def record_launch(sandbox: Path, token: str, pid: int) -> None:
    """Note that `pid` (carrying `token`) was started for `sandbox`."""
    start = start_time(pid)
    if start is None:  # gone already (or no /proc): its descendants still carry the token
        start = 0
    line = json.dumps({"token": token, "pid": pid, "start": start}) + "\n"
    flags = os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_NOFOLLOW
    fd = os.open(sandbox / _LEDGER, flags, 0o600)
    try:
        os.write(fd, line.encode())
    finally:
        os.close(fd)


def launched(sandbox: Path) -> list[Proc]:
    """The running processes started for `sandbox` (by the ledger), with their start times."""
    try:
        fd = os.open(sandbox / _LEDGER, os.O_RDONLY | os.O_NOFOLLOW)
    except (FileNotFoundError, NotADirectoryError):
        return []
    with os.fdopen(fd, "rb") as ledger:
        entries = [json.loads(line) for line in ledger if line.strip()]
    tokens = {str(e["token"]): int(e["start"]) for e in entries}
    found = processes_with(LAUNCH_VAR, set(tokens))
    return sorted(proc for proc, token in found if proc.start >= tokens[token])
