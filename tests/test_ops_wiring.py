"""The ops plane wired into the platform: `prvng daemon keeper|controller` alone, on a
real nats-server."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from daemons.bus import PENDING_STREAM, NatsServer, connect
from tests.subprocesses import read_line, reap
from tests.waiting import until_blocking

PRVNG = str(Path(sys.executable).with_name("prvng"))


async def _consumers(url: str) -> list[str]:
    nc = await connect(url, name="test")
    try:
        return [c.name for c in await nc.jetstream().consumers_info(PENDING_STREAM)]
    finally:
        await nc.close()


@pytest.mark.parametrize("name", ["keeper", "controller"])
def test_an_ops_daemon_runs_alone_until_sigterm(name: str, tmp_path: Path) -> None:
    with NatsServer(tmp_path / "nats") as server:
        env = {**os.environ, "PRVNG_NATS_URL": server.url}
        proc = subprocess.Popen(
            [PRVNG, "daemon", name],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        )
        try:
            assert read_line(proc, within_s=60).startswith(f"{name} running")
            consumers = asyncio.run(_consumers(server.url))  # the daemon made the stream
            assert consumers == (["ops-controller"] if name == "controller" else [])
            proc.send_signal(signal.SIGTERM)
            assert proc.wait(timeout=30) == 0
        finally:
            reap(proc)


def _children(pid: int) -> list[int]:
    tasks = Path(f"/proc/{pid}/task")
    found: list[int] = []
    for task in tasks.iterdir():
        found += [int(c) for c in (task / "children").read_text().split()]
    return found


@pytest.mark.skipif(sys.platform != "linux", reason="parent-death signal is Linux's")
def test_a_killed_platform_leaves_no_nats_server_behind() -> None:
    """SIGKILL gives the platform no chance to stop its bundled nats-server: the server
    goes with it all the same (its store and port are free for the next start)."""
    proc = subprocess.Popen(
        [PRVNG, "daemon", "keeper"], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True
    )
    try:
        assert read_line(proc, within_s=60).startswith("keeper running (NATS bundled)")
        (server,) = _children(proc.pid)
        assert "nats-server" in Path(f"/proc/{server}/cmdline").read_text()
        proc.kill()
        proc.wait(timeout=10)
        until_blocking(
            lambda: not Path(f"/proc/{server}").exists() or _state(server) == "Z",
            what=f"nats-server {server} ending with its platform",
            within_s=10,
        )
    finally:
        reap(proc)


def _state(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return "gone"
