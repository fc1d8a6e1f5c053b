"""Long-running child processes: reading their output with a deadline (never a sleep),
and reaping them in a test's `finally`."""

from __future__ import annotations

import os
import selectors
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from fastmcp.client.transports import StdioTransport

PROJECT = Path(__file__).resolve().parents[1]


def read_line(proc: subprocess.Popen[str], within_s: float) -> str:
    """The process's next stdout line ('' at EOF), or TimeoutError after `within_s`."""
    assert proc.stdout is not None
    deadline = time.monotonic() + within_s
    with selectors.DefaultSelector() as selector:
        selector.register(proc.stdout, selectors.EVENT_READ)
        while (left := deadline - time.monotonic()) > 0:
            if selector.select(left):
                return proc.stdout.readline()
    raise TimeoutError(f"no output from pid {proc.pid} within {within_s}s")


def read_ready_line(proc: subprocess.Popen[str], within_s: float = 60) -> str:
    """The first line announcing readiness (`... ready ...`), or what ended the output."""
    deadline = time.monotonic() + within_s
    while True:
        line = read_line(proc, max(0.0, deadline - time.monotonic()))
        if " ready " in line or not line:
            return line


def reap(proc: subprocess.Popen[Any]) -> None:
    """Kill `proc` if it still runs, wait for it and close its pipes (a test's `finally`:
    whatever the test asserted, no child and no descriptor outlives it)."""
    if proc.poll() is None:
        proc.kill()
    proc.wait()
    for pipe in (proc.stdin, proc.stdout, proc.stderr):
        if pipe is not None:
            pipe.close()


def mcp_stdio() -> StdioTransport:
    """`prvng mcp` as a child process (the stdio entry point, this environment, this checkout)."""
    code = "from daemons.common.settings import Settings; "
    code += "from servers.cli.processes import run_stdio; run_stdio(Settings.from_env())"
    return StdioTransport(
        sys.executable, ["-c", code], env=dict(os.environ), cwd=str(PROJECT), keep_alive=False
    )
