"""The run file a running platform leaves in PRVNG_HOME, so clients find it.

Light on purpose (stdlib only): the CLI reads it on every start.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path

from daemons.common.files import atomic_write_json, pid_alive


@dataclass(frozen=True, slots=True)
class RunInfo:
    pid: int
    url: str
    started_at: str
    components: list[str]


def write_run_file(path: Path, info: RunInfo) -> None:
    atomic_write_json(path, asdict(info))


def read_run_file(path: Path) -> RunInfo | None:
    """The live platform's run info; None if none runs (a stale file is ignored)."""
    try:
        raw = json.loads(path.read_text())
        info = RunInfo(
            pid=int(raw["pid"]),
            url=str(raw["url"]),
            started_at=str(raw["started_at"]),
            components=list(raw.get("components", [])),
        )
    except (OSError, ValueError, KeyError, TypeError):
        return None
    if info.pid != os.getpid() and not pid_alive(info.pid):
        return None
    return info


def remove_run_file(path: Path, pid: int | None = None) -> None:
    """Remove the run file if it is ours (or unconditionally when `pid` is None)."""
    current = read_run_file(path)
    if pid is None or current is None or current.pid == pid:
        path.unlink(missing_ok=True)
