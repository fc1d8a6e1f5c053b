"""The run file a running platform leaves in PRVNG_HOME, so clients find it.

A run file may outlive its platform (`kill -9`), and its pid and port may be reused. So it
records the process's start time, which a reused pid does not share, and a per-run secret:
before a client sends a credential to the URL it names, the listener must answer a fresh
nonce with HMAC-SHA256(secret, nonce), which only the platform that wrote the file can.
Light on purpose (stdlib only): the CLI reads it on every start.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path

from daemons.common.files import atomic_write_json, pid_alive

MAX_CHALLENGE = 128


@dataclass(frozen=True, slots=True)
class RunInfo:
    pid: int
    url: str
    started_at: str
    components: list[str]
    start_ticks: int | None = None
    """Field 22 of /proc/<pid>/stat when the platform started (None without /proc)."""
    secret: str = field(default="", repr=False)
    """The per-run secret (hex) behind the `/health?challenge=` proof; never logged."""

    @classmethod
    def for_this_process(
        cls, url: str, started_at: str, components: list[str], secret: str
    ) -> RunInfo:
        """This process's run info (the app serving `url` was given `secret`)."""
        pid = os.getpid()
        return cls(pid, url, started_at, components, process_start_ticks(pid), secret)


def new_secret() -> str:
    return os.urandom(32).hex()


def challenge_proof(secret: str, challenge: str) -> str:
    """What the platform answers to `GET /health?challenge=<challenge>`."""
    return hmac.new(bytes.fromhex(secret), challenge.encode(), hashlib.sha256).hexdigest()


def process_start_ticks(pid: int) -> int | None:
    """When `pid` started, in clock ticks after boot (/proc/<pid>/stat field 22); None where
    there is no /proc or no such process."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        # Fields after the command name (which may hold spaces and ')') start at field 3.
        return int(stat[stat.rindex(")") + 2 :].split()[19])
    except (OSError, ValueError, IndexError):
        return None


def is_same_process(info: RunInfo) -> bool:
    """True while the run file's pid is alive and is still the process that wrote it."""
    if not pid_alive(info.pid):
        return False
    return info.start_ticks is None or process_start_ticks(info.pid) == info.start_ticks


def write_run_file(path: Path, info: RunInfo) -> None:
    atomic_write_json(path, asdict(info))


def read_run_file(path: Path) -> RunInfo | None:
    """The live platform's run info; None if none runs (a stale file is ignored)."""
    try:
        raw = json.loads(path.read_text())
        ticks = raw["start_ticks"]
        info = RunInfo(
            pid=int(raw["pid"]),
            url=str(raw["url"]),
            started_at=str(raw["started_at"]),
            components=list(raw.get("components", [])),
            start_ticks=None if ticks is None else int(ticks),
            secret=str(raw["secret"]),
        )
        if len(bytes.fromhex(info.secret)) < 16:
            raise ValueError("no usable run secret")
    except (OSError, ValueError, KeyError, TypeError):
        return None
    if info.pid != os.getpid() and not is_same_process(info):
        return None
    return info


def remove_run_file(path: Path, pid: int | None = None) -> None:
    """Remove the run file if it is ours (or unconditionally when `pid` is None)."""
    current = read_run_file(path)
    if pid is None or current is None or current.pid == pid:
        path.unlink(missing_ok=True)
