"""A stale run file (the platform was `kill -9`ed, its pid or port reused) must not make
the CLI hand the admin key to whatever listens there, nor signal whoever has that pid."""

from __future__ import annotations

import asyncio
import dataclasses
import http.server
import json
import os
import stat
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from daemons.common.files import atomic_write_json
from daemons.common.settings import Settings
from registry import Registry
from servers.cli.processes import stop_platform
from servers.cli.remote import proves_run
from servers.runfile import process_start_ticks, read_run_file
from servers.supervisor import serve

PRVNG = str(Path(sys.executable).with_name("prvng"))


@dataclass
class Impostor:
    """A listener that answers like a platform and records the credentials it is sent."""

    url: str
    authorizations: list[str] = field(default_factory=list)
    paths: list[str] = field(default_factory=list)


@pytest.fixture
def impostor() -> Iterator[Impostor]:
    seen = Impostor("")

    class Handler(http.server.BaseHTTPRequestHandler):
        def _answer(self) -> None:
            seen.paths.append(self.path)
            seen.authorizations.append(self.headers.get("Authorization") or "")
            length = int(self.headers.get("Content-Length") or 0)
            self.rfile.read(length)
            body = json.dumps({"ok": True, "data": {}, "proof": "0" * 64, "status": "ok"})
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body.encode())

        do_GET = do_POST = _answer

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    seen.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield seen
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


@pytest.fixture
def bystander() -> Iterator[subprocess.Popen[bytes]]:
    """A live process that is not the platform."""
    proc = subprocess.Popen(["sleep", "60"])
    try:
        yield proc
    finally:
        proc.kill()
        proc.wait()


def _stale_run_file(settings: Settings, pid: int, url: str, start_ticks: int | None) -> None:
    """What a killed platform leaves behind (its pid now someone else's, or its port)."""
    atomic_write_json(
        settings.run_file,
        {
            "pid": pid,
            "url": url,
            "started_at": "2026-01-01T00:00:00.000Z",
            "components": ["state", "orchestrator", "http"],
            "start_ticks": start_ticks,
            "secret": os.urandom(32).hex(),
        },
    )


def _call_info() -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [PRVNG, "call", "platform.info"], capture_output=True, text=True, timeout=60, check=False
    )


@pytest.mark.parametrize("same_start", [True, False], ids=["pid-alive", "pid-reused"])
def test_the_cli_never_sends_the_admin_key_to_a_listener_it_cannot_verify(
    settings: Settings,
    admin_key: str,
    impostor: Impostor,
    bystander: subprocess.Popen[bytes],
    same_start: bool,
) -> None:
    ticks = process_start_ticks(bystander.pid)
    _stale_run_file(
        settings, bystander.pid, impostor.url, ticks if same_start else (ticks or 0) + 1
    )
    done = _call_info()
    assert done.returncode == 0, done.stderr  # no platform: the call ran in this process
    assert json.loads(done.stdout)["home"] == str(settings.home)
    assert not any(admin_key in auth for auth in impostor.authorizations), impostor.paths
    assert all(not path.startswith("/v1/") for path in impostor.paths), impostor.paths
    if same_start:  # the pid matched, so the listener was asked to prove itself, and failed
        assert impostor.paths and impostor.paths[0].startswith("/health?challenge=")
        assert f"{impostor.url} is not the platform" in done.stderr
    else:  # the pid is another process now: the run file is stale, nothing is contacted
        assert impostor.paths == []
        assert read_run_file(settings.run_file) is None


def test_platform_status_never_sends_the_admin_key_to_a_listener_it_cannot_verify(
    settings: Settings, admin_key: str, impostor: Impostor, bystander: subprocess.Popen[bytes]
) -> None:
    _stale_run_file(settings, bystander.pid, impostor.url, process_start_ticks(bystander.pid))
    status = subprocess.run(
        [PRVNG, "platform", "status", "--json"], capture_output=True, text=True, timeout=60
    )
    assert impostor.paths, "the status probe never reached the listener"
    assert not any(admin_key in auth for auth in impostor.authorizations), impostor.paths
    assert status.returncode != 0  # the impostor's /health is no healthy platform


def test_platform_stop_does_not_signal_a_process_that_reused_the_pid(
    settings: Settings, bystander: subprocess.Popen[bytes]
) -> None:
    ticks = process_start_ticks(bystander.pid)
    assert ticks is not None  # Linux: /proc is there
    _stale_run_file(settings, bystander.pid, "http://127.0.0.1:9", ticks - 1)
    assert stop_platform(settings, timeout=1) is False
    done = subprocess.run(
        [PRVNG, "platform", "stop"], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0 and "no platform is running" in done.stderr
    assert bystander.poll() is None  # still alive: never signalled


async def test_the_platform_that_wrote_the_run_file_proves_it(
    registry: Registry, settings: Settings
) -> None:
    async with serve(registry, settings, write_run_file=True) as url:
        info = read_run_file(settings.run_file)
        assert info is not None and info.url == url
        assert info.start_ticks == process_start_ticks(os.getpid())
        assert await asyncio.to_thread(proves_run, info)
        forged = dataclasses.replace(info, secret=os.urandom(32).hex())
        assert not await asyncio.to_thread(proves_run, forged)
        assert info.secret not in repr(info)
        assert stat.S_IMODE(settings.run_file.stat().st_mode) == 0o600
