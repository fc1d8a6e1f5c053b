"""`prvng daemon audit-mirror` and `prvng audit verify` as users run them: subprocesses of
the console script on the test's PRVNG_HOME and a real nats-server."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

from nats.aio.client import Client

from daemons.audit_mirror.repo import run_git
from daemons.bus import NatsServer
from daemons.common.settings import Settings
from tests.audit_mirror.forgery import commit_signed_events, forge_unsigned_commit
from tests.audit_mirror.test_mirror import publish
from tests.waiting import until

PRVNG = str(Path(sys.executable).with_name("prvng"))


def prvng(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [PRVNG, *args], capture_output=True, text=True, env=dict(os.environ), timeout=60
    )


def test_audit_verify_exits_0_then_names_an_unsigned_commit(settings: Settings) -> None:
    commit_signed_events(settings, 3)
    done = prvng("audit", "verify")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["commits"] == 3

    forged = forge_unsigned_commit(settings)
    done = prvng("audit", "verify")
    assert done.returncode == 5
    assert f"unsigned: commit {forged[:12]}" in done.stderr
    assert not json.loads(done.stdout)["ok"]


def _commit_count(repo: Path) -> int:
    done = run_git(repo, "rev-list", "--count", "main")
    return int(done.stdout or 0) if done.returncode == 0 else 0


async def test_the_daemon_alone_mirrors_the_stream(
    nats_server: NatsServer, nc: Client, settings: Settings
) -> None:
    await publish(nc, 3)
    proc = subprocess.Popen(  # noqa: ASYNC220  # a long-running child, stopped in finally
        [PRVNG, "daemon", "audit-mirror"],
        env={**os.environ, "PRVNG_NATS_URL": nats_server.url},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        await until(
            lambda: _commit_count(settings.audit_dir) == 3, what="3 audit commits", within_s=60
        )
    finally:
        proc.send_signal(signal.SIGTERM)
        _out, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err
    done = prvng("audit", "verify", "--nats-url", nats_server.url)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["events"] == 3
