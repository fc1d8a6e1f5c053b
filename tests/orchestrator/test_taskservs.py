"""The taskserv catalog and the two shipped taskservs, installed for real in a local sandbox."""

from __future__ import annotations

import shutil
import socket
import subprocess
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from daemons.common.files import pid_alive
from daemons.common.inventory import Inventory
from daemons.common.settings import PROJECT_ROOT, Settings
from daemons.common.state import StateStore
from daemons.ncl_sync import ConfigCache
from daemons.orchestrator.actions import ActionContext, ActionError
from daemons.orchestrator.provisioning.providers.local import LocalProvider
from daemons.orchestrator.provisioning.taskserv_actions import (
    TaskservInstall,
    TaskservParams,
    TaskservRemove,
)
from daemons.orchestrator.provisioning.taskservs import Catalog, list_taskservs, load_taskserv
from orchestrator.conftest import ContextFactory
from registry.errors import InvalidInput, NotFound, PlatformError

CONFIG = PROJECT_ROOT / "config"


def _catalog(config_dir: Path, tmp_path: Path) -> Catalog:
    return Catalog(config_dir, ConfigCache(tmp_path / "config-cache"))


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def port_open(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0


@pytest.fixture
def ctx(action_context: ContextFactory) -> ActionContext:
    return action_context("install")


@pytest.fixture
async def sandbox(ctx: ActionContext, settings: Settings, store: StateStore) -> AsyncIterator[Path]:
    """Server `web-1`, deleted at the end (which stops anything a test left running)."""
    provider = LocalProvider(settings, store)
    await provider.create_server("web-1", {}, ctx)
    try:
        yield provider.sandbox("web-1")
    finally:
        await provider.delete_server("web-1", ctx)


async def install(ctx: ActionContext, taskserv: str, **settings: Any) -> dict[str, Any]:
    params = TaskservParams(server="web-1", taskserv=taskserv, settings=settings)
    return await TaskservInstall().run(params, ctx)


async def remove(ctx: ActionContext, taskserv: str, server: str = "web-1") -> dict[str, Any]:
    return await TaskservRemove().run(TaskservParams(server=server, taskserv=taskserv), ctx)


async def installed(store: StateStore) -> list[dict[str, Any]]:
    return list((await Inventory(store).get("web-1"))["taskservs"])


def test_the_catalog_lists_the_shipped_taskservs_with_their_defaults(tmp_path: Path) -> None:
    catalog = {t.name: t.describe() for t in list_taskservs(_catalog(CONFIG, tmp_path))}
    assert sorted(catalog) == ["kv-store", "static-web"]
    assert catalog["static-web"]["settings"] == {"port": 18081, "title": "It works"}
    assert catalog["static-web"]["health"]["kind"] == "http"
    assert catalog["kv-store"]["settings"] == {"max_value_bytes": 65536}
    assert catalog["kv-store"]["health"]["kind"] == "command"


def test_settings_are_merged_with_defaults_and_checked_by_their_contracts(tmp_path: Path) -> None:
    assert load_taskserv(_catalog(CONFIG, tmp_path), "static-web", {"port": 9000}).settings == {
        "port": 9000,
        "title": "It works",
    }
    with pytest.raises(InvalidInput, match=r"value of `port` \(given 70000\)") as bad:
        load_taskserv(_catalog(CONFIG, tmp_path), "static-web", {"port": 70000})
    assert "nickel_error" in bad.value.details
    with pytest.raises(InvalidInput, match=r"extra field `colour` \(its settings: port, title\)"):
        load_taskserv(_catalog(CONFIG, tmp_path), "static-web", {"colour": "red"})
    with pytest.raises(NotFound, match="available: kv-store, static-web"):
        load_taskserv(_catalog(CONFIG, tmp_path), "mail")
    with pytest.raises(NotFound):
        load_taskserv(_catalog(CONFIG, tmp_path), "../schemas")


def test_a_broken_catalog_entry_is_reported_with_what_to_fix(tmp_path: Path) -> None:
    shutil.copytree(CONFIG / "schemas", tmp_path / "schemas")
    entry = tmp_path / "taskservs" / "web"
    shutil.copytree(CONFIG / "taskservs" / "static-web", entry)
    with pytest.raises(InvalidInput, match="names itself 'static-web'"):
        load_taskserv(_catalog(tmp_path, tmp_path), "web")
    ncl = entry / "taskserv.ncl"
    ncl.write_text(ncl.read_text().replace('"static-web"', '"web"'))
    assert load_taskserv(_catalog(tmp_path, tmp_path), "web").name == "web"
    (entry / "remove.sh").unlink()
    with pytest.raises(InvalidInput, match=r"has no remove\.sh"):
        load_taskserv(_catalog(tmp_path, tmp_path), "web")
    ncl.write_text('{ name = "web", description = 1 }')
    with pytest.raises(InvalidInput, match="does not describe a taskserv"):
        load_taskserv(_catalog(tmp_path, tmp_path), "web")


def test_catalog_definitions_are_read_through_the_config_cache(tmp_path: Path) -> None:
    shutil.copytree(CONFIG / "schemas", tmp_path / "schemas")
    entry = tmp_path / "taskservs" / "web"
    shutil.copytree(CONFIG / "taskservs" / "static-web", entry)
    ncl = entry / "taskserv.ncl"
    ncl.write_text(ncl.read_text().replace('"static-web"', '"web"'))
    catalog = _catalog(tmp_path, tmp_path)
    load_taskserv(catalog, "web")
    load_taskserv(catalog, "web")
    assert (catalog.cache.stats.misses, catalog.cache.stats.hits) == (1, 1)
    outside = tmp_path.parent / f"{tmp_path.name}-outside.ncl"
    outside.write_text('{ name = "web" }')
    ncl.write_text(f'import "{outside}"')  # before: evaluated, whatever its path
    with pytest.raises(PlatformError, match="outside"):
        load_taskserv(catalog, "web")


async def test_static_web_serves_its_page_and_remove_stops_it(
    ctx: ActionContext, sandbox: Path, store: StateStore
) -> None:
    port = free_port()
    result = await install(ctx, "static-web", port=port, title="Hello <web>")
    assert result == {
        "server": "web-1",
        "name": "static-web",
        "settings": {"port": port, "title": "Hello <web>"},
        "status": "running",
    }
    async with httpx.AsyncClient() as client:
        page = await client.get(f"http://127.0.0.1:{port}/")
    assert page.status_code == 200 and "<h1>Hello &lt;web&gt;</h1>" in page.text
    pid = int((sandbox / "run" / "static-web.pid").read_text())
    assert pid_alive(pid)
    assert await installed(store) == [
        {
            "name": "static-web",
            "settings": {"port": port, "title": "Hello <web>"},
            "status": "running",
        }
    ]

    # A re-run (say, after a crash) converges on the running server.
    await install(ctx, "static-web", port=port, title="Hello <web>")
    assert int((sandbox / "run" / "static-web.pid").read_text()) == pid

    removed = await remove(ctx, "static-web")
    assert removed["removed"] is True and removed["was_installed"] is True
    assert not pid_alive(pid) and not port_open(port)
    assert not (sandbox / "taskservs" / "static-web").exists()
    assert await installed(store) == []
    assert (await remove(ctx, "static-web"))["was_installed"] is False  # idempotent


async def test_static_web_on_a_busy_port_fails_fast_with_the_reason(
    ctx: ActionContext, sandbox: Path, store: StateStore
) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        with pytest.raises(ActionError, match="Address already in use") as failed:
            await install(ctx, "static-web", port=busy.getsockname()[1])
    assert failed.value.retryable
    assert [t["status"] for t in await installed(store)] == ["failed"]


async def test_kv_store_installs_a_working_command_and_keeps_data_on_reinstall(
    ctx: ActionContext, sandbox: Path, store: StateStore
) -> None:
    result = await install(ctx, "kv-store", max_value_bytes=8)
    assert result["status"] == "running"
    kv = sandbox / "bin" / "kv"

    def run_kv(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([str(kv), *args], capture_output=True, text=True, check=False)

    assert run_kv("set", "colour", "blue").returncode == 0
    assert run_kv("get", "colour").stdout == "blue\n"
    assert run_kv("list").stdout.split() == ["colour", "health"]
    too_big = run_kv("set", "big", "123456789")
    assert too_big.returncode == 2 and "limit is 8" in too_big.stderr
    assert run_kv("get", "../server.json").returncode == 2

    await install(ctx, "kv-store", max_value_bytes=8)
    assert run_kv("get", "colour").stdout == "blue\n"

    await remove(ctx, "kv-store")
    assert not kv.exists() and not (sandbox / "taskservs" / "kv-store").exists()
    assert await installed(store) == []


async def test_install_needs_an_existing_server_and_valid_settings(
    ctx: ActionContext, sandbox: Path
) -> None:
    params = TaskservParams(server="ghost", taskserv="kv-store")
    with pytest.raises(ActionError, match="'ghost' does not exist") as missing:
        await TaskservInstall().run(params, ctx)
    assert not missing.value.retryable
    with pytest.raises(ActionError, match="value of `port`") as bad:
        await install(ctx, "static-web", port=0)
    assert not bad.value.retryable and bad.value.details["code"] == "invalid_input"
    assert (await remove(ctx, "kv-store", server="ghost"))["removed"] is False


async def test_deleting_the_server_stops_its_taskservs(
    ctx: ActionContext, sandbox: Path, settings: Settings, store: StateStore
) -> None:
    port = free_port()
    await install(ctx, "static-web", port=port)
    pid = int((sandbox / "run" / "static-web.pid").read_text())
    await LocalProvider(settings, store).delete_server("web-1", ctx)
    assert not pid_alive(pid) and not port_open(port) and not sandbox.exists()
