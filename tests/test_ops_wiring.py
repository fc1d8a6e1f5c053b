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
from tests.subprocesses import read_line

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
            if proc.poll() is None:
                proc.kill()
                proc.wait()
            assert proc.stdout is not None
            proc.stdout.close()
