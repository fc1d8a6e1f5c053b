"""The supervisor: `serve`, components in order, the run file, one platform per home."""

from __future__ import annotations

import asyncio
import dataclasses
import os
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
from subprocesses import read_line

from daemons.common.keystore import KeyStore
from daemons.common.settings import Settings
from registry import Registry, Unavailable
from servers.assembly import build_registry
from servers.cli.processes import platform_status, run_platform, stop_platform
from servers.runfile import read_run_file
from servers.supervisor import HttpComponent, Platform, build_platform, serve
from tests.subprocesses import reap

PROJECT = Path(__file__).resolve().parents[1]


async def test_serve_yields_a_healthy_url_and_stops(registry: Registry, settings: Settings) -> None:
    async with serve(registry, settings) as url, httpx.AsyncClient() as client:
        health = await client.get(f"{url}/health")
        assert health.status_code == 200 and health.json()["status"] == "ok"
    async with httpx.AsyncClient() as client:
        with pytest.raises(httpx.ConnectError):
            await client.get(f"{url}/health")


async def test_serve_writes_the_run_file_clients_find(
    registry: Registry, settings: Settings
) -> None:
    assert read_run_file(settings.run_file) is None
    async with serve(registry, settings, write_run_file=True) as url:
        info = read_run_file(settings.run_file)
        assert info is not None and info.pid == os.getpid() and info.url == url
        status = await asyncio.to_thread(platform_status, settings)
        assert status["running"] is True and status["url"] == url
        assert status["health"]["status"] == "ok"
        assert stop_platform(settings) is False  # never signals its own process
    assert not settings.run_file.exists()
    assert platform_status(settings) == {"running": False, "url": None, "pid": None, "health": None}


class Recorder:
    """A component that records its start and stop in a shared log."""

    def __init__(self, name: str, log: list[str], fail: bool = False) -> None:
        self.name = name
        self.log = log
        self.fail = fail

    async def start(self) -> None:
        if self.fail:
            raise Unavailable(f"{self.name} cannot start")
        self.log.append(f"start {self.name}")

    async def stop(self) -> None:
        self.log.append(f"stop {self.name}")


async def test_components_start_in_order_and_stop_in_reverse(
    registry: Registry, settings: Settings
) -> None:
    log: list[str] = []
    platform = Platform(settings, registry)
    for name in ("a", "c"):
        platform.add_component(Recorder(name, log))
    platform.add_component(Recorder("b", log), before="c")
    await platform.start()
    assert platform.running and [c.name for c in platform.components] == ["a", "b", "c"]
    await platform.stop()
    assert log == ["start a", "start b", "start c", "stop c", "stop b", "stop a"]
    assert not platform.running

    log.clear()
    failing = Platform(settings, registry)
    for component in (Recorder("a", log), Recorder("b", log, fail=True), Recorder("c", log)):
        failing.add_component(component)
    with pytest.raises(Unavailable, match="b cannot start"):
        await failing.start()
    assert log == ["start a", "stop a"]
    with pytest.raises(ValueError, match="already added"):
        failing.add_component(Recorder("a", log))
    with pytest.raises(ValueError, match="no component named 'nats'"):
        failing.add_component(Recorder("d", log), before="nats")


@pytest.fixture
def on_disk(settings: Settings) -> Settings:
    """Settings with the embedded file store (surrealkv), which one process may hold."""
    return dataclasses.replace(settings, surreal_url=None)


async def test_a_second_platform_on_the_same_home_fails_fast(on_disk: Settings) -> None:
    keystore = KeyStore(on_disk)
    async with build_registry(on_disk, keystore=keystore) as registry:
        first = build_platform(on_disk, registry, "127.0.0.1", 0)
        await first.start()
        try:
            http = first.components[-1]
            assert isinstance(http, HttpComponent)
            url = http.url
            admin = {"Authorization": f"Bearer {keystore.ensure_admin_key().read_text().strip()}"}
            async with httpx.AsyncClient(headers=admin) as client:
                health = (await client.get(f"{url}/health")).json()
            assert health["status"] == "ok"
            assert set(health["components"]) == {
                *("registry", "state", "orchestrator", "nats", "keeper", "controller"),
                *("ncl-sync", "audit-mirror", "http"),
            }
            assert all(c["ready"] for c in health["components"].values()), health
            assert health["components"]["state"]["detail"] == "surrealkv"
            assert health["components"]["controller"]["detail"] == "pulling"
            assert (on_disk.nats_dir / "jetstream").is_dir()  # the bundled server's store
            async with build_registry(on_disk, keystore=keystore) as other:
                second = build_platform(on_disk, other, "127.0.0.1", 0)
                with pytest.raises(Unavailable, match=f"in use by pid {os.getpid()}") as refused:
                    await second.start()
                # Refused by the lock's holder check, before anything else started (the
                # time it takes is in `bench/startup.py`).
                assert refused.value.details["holder"] == str(os.getpid())
                http_second = second.components[-1]
                assert isinstance(http_second, HttpComponent) and not http_second.running
                assert not second.running
            async with httpx.AsyncClient() as client:
                assert (await client.get(f"{url}/health")).status_code == 200
        finally:
            await first.stop()
    assert not first.running


def test_platform_process_runs_until_sigterm(
    on_disk: Settings, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    env = {k: v for k, v in os.environ.items() if k != "PRVNG_SURREAL_URL"}
    code = (
        "import sys; from daemons.common.settings import Settings; "
        "from servers.cli.processes import run_platform; "
        "sys.exit(run_platform(Settings.from_env(), '127.0.0.1', 0))"
    )
    log_path = tmp_path / "platform.log"
    with log_path.open("w") as log:
        proc = subprocess.Popen(
            [sys.executable, "-c", code],
            env=env,
            cwd=PROJECT,
            stdout=subprocess.PIPE,
            stderr=log,
            text=True,
        )
    try:
        line = read_line(proc, within_s=60)
        assert line.startswith("platform ready at http://127.0.0.1:"), line + log_path.read_text()
        assert f"(admin key: {on_disk.admin_key_file})" in line
        url = line.split()[3]
        info = read_run_file(on_disk.run_file)
        assert info is not None and (info.pid, info.url) == (proc.pid, url)
        assert info.components == [
            *("state", "orchestrator", "nats", "keeper", "controller"),
            *("ncl-sync", "audit-mirror", "http"),
        ]
        status = platform_status(on_disk)
        assert status["running"] and status["pid"] == proc.pid
        assert status["health"]["status"] == "ok"

        # The same home again: the embedded store is locked -> exit code 8, clear message.
        assert run_platform(on_disk, "127.0.0.1", 0) == 8
        assert f"in use by pid {proc.pid}" in capsys.readouterr().err
        # Another home, the same port: address in use -> exit code 8.
        elsewhere = dataclasses.replace(on_disk, home=tmp_path / "elsewhere", surreal_url="mem://")
        port = int(url.rsplit(":", 1)[1])
        assert run_platform(elsewhere, "127.0.0.1", port) == 8
        assert f"port {port} on 127.0.0.1 is already in use" in capsys.readouterr().err

        assert stop_platform(on_disk, timeout=30) is True
        assert proc.wait(timeout=10) == 0
    finally:
        reap(proc)
    assert not on_disk.run_file.exists()
    assert platform_status(on_disk)["running"] is False
    assert stop_platform(on_disk) is False
    key = on_disk.admin_key_file.read_text().strip()
    assert key not in line and key not in log_path.read_text()
    assert info.secret not in line and info.secret not in log_path.read_text()
