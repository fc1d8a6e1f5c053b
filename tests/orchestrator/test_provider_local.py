"""The local provider: sandbox directories, inventory records, idempotent create and delete."""

from __future__ import annotations

import json
import os
import signal
import subprocess
from collections.abc import Callable, Iterator
from contextlib import suppress
from pathlib import Path
from typing import Any

import pytest

from daemons.common.files import pid_alive
from daemons.common.inventory import Inventory
from daemons.common.settings import Settings
from daemons.common.state import StateStore
from daemons.orchestrator.actions import ActionContext, ActionError
from daemons.orchestrator.actions.shell import run_process
from daemons.orchestrator.provisioning.launches import LAUNCH_VAR, new_token, record_launch
from daemons.orchestrator.provisioning.providers import get_provider, provider_names
from daemons.orchestrator.provisioning.providers.local import LocalProvider
from daemons.orchestrator.provisioning.server_actions import (
    ServerCreate,
    ServerCreateParams,
    ServerDelete,
    ServerDeleteParams,
)
from orchestrator.conftest import ContextFactory
from registry.errors import InvalidInput, Unavailable
from tools.server.registration import Server


@pytest.fixture
def ctx(action_context: ContextFactory) -> ActionContext:
    return action_context("create.web-1")


Spawn = Callable[..., "subprocess.Popen[bytes]"]


@pytest.fixture
def spawn() -> Iterator[Spawn]:
    """Starts processes; whatever the test leaves running is killed and reaped."""
    procs: list[subprocess.Popen[bytes]] = []

    def _spawn(argv: list[str], **kwargs: Any) -> subprocess.Popen[bytes]:
        procs.append(subprocess.Popen(argv, **kwargs))
        return procs[-1]

    try:
        yield _spawn
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
            proc.wait()


async def create(ctx: ActionContext, **params: object) -> dict[str, object]:
    return await ServerCreate().run(ServerCreateParams.model_validate(params), ctx)


async def delete(ctx: ActionContext, **params: object) -> dict[str, object]:
    return await ServerDelete().run(ServerDeleteParams.model_validate(params), ctx)


async def test_create_makes_a_private_sandbox_and_an_inventory_record(
    ctx: ActionContext, settings: Settings, store: StateStore
) -> None:
    result = await create(ctx, name="web-1", labels={"env": "dev"}, plan="small")
    sandbox = settings.servers_dir / "web-1"
    assert result == {
        "name": "web-1",
        "provider": "local",
        "address": "127.0.0.1",
        "labels": {"env": "dev"},
        "status": "running",
        "sandbox": str(sandbox),
        "created": True,
    }
    assert sandbox.stat().st_mode & 0o777 == 0o700
    meta = json.loads((sandbox / "server.json").read_text())
    assert meta["plan"] == "small" and meta["idempotency_key"] == "wf-1/create.web-1"
    record = await Inventory(store).get("web-1")
    # The record stays readable by the `server.get|list` tools.
    server = Server.model_validate(record)
    assert (server.provider, server.status, server.address) == ("local", "running", "127.0.0.1")
    assert server.sandbox == str(sandbox) and server.taskservs == []


async def test_create_again_converges_instead_of_duplicating(
    ctx: ActionContext, settings: Settings, store: StateStore
) -> None:
    first = await create(ctx, name="web-1", labels={"env": "dev"})
    record = await Inventory(store).get("web-1")
    created_at = json.loads((settings.servers_dir / "web-1" / "server.json").read_text())
    again = await create(ctx, name="web-1", labels={"env": "prod"})
    assert first["created"] is True and again["created"] is False
    servers = await Inventory(store).list()
    assert [s["name"] for s in servers] == ["web-1"]
    assert servers[0]["registered_at"] == record["registered_at"]
    assert servers[0]["labels"] == {"env": "prod"}
    meta = json.loads((settings.servers_dir / "web-1" / "server.json").read_text())
    assert meta["created_at"] == created_at["created_at"]


async def test_create_after_a_crash_between_steps_converges(
    ctx: ActionContext, settings: Settings, store: StateStore
) -> None:
    # Crash after the sandbox was made, before the record was written.
    (settings.servers_dir / "web-1").mkdir(parents=True, mode=0o755)
    (settings.servers_dir / "web-1").chmod(0o755)
    await create(ctx, name="web-1")
    assert (settings.servers_dir / "web-1").stat().st_mode & 0o777 == 0o700
    assert (await Inventory(store).get("web-1"))["status"] == "running"
    # A record without its sandbox (say, the directory was lost) gets it back.
    (settings.servers_dir / "web-1" / "server.json").unlink()
    assert (await create(ctx, name="web-1"))["created"] is True
    assert (settings.servers_dir / "web-1" / "server.json").is_file()


async def test_delete_stops_every_process_launched_for_the_sandbox_and_removes_it(
    ctx: ActionContext,
    settings: Settings,
    store: StateStore,
    spawn: Spawn,
    tmp_path: Path,
) -> None:
    await create(ctx, name="web-1")
    sandbox = settings.servers_dir / "web-1"
    # A script launched for the sandbox leaves a detached daemon working elsewhere ...
    token, pidfile = new_token(), sandbox / "run" / "daemon.pid"
    script = f"cd {tmp_path} && setsid sleep 60 </dev/null >/dev/null 2>&1 & echo $! >{pidfile}"
    await run_process(
        ["/bin/sh", "-c", script],
        cwd=sandbox,
        env={"PATH": os.defpath, LAUNCH_VAR: token},
        log=lambda _stream, _text: None,
        on_start=lambda pid: record_launch(sandbox, token, pid),
    )
    daemon = int(pidfile.read_text())
    # ... while a process that merely works in the sandbox was not started by us.
    bystander = spawn(["sleep", "60"], cwd=sandbox)
    try:
        result = await delete(ctx, name="web-1")
        assert result["stopped_pids"] == [daemon]
        assert not pid_alive(daemon) and pid_alive(bystander.pid)
    finally:
        with suppress(ProcessLookupError):
            os.kill(daemon, signal.SIGKILL)
    assert not sandbox.exists()
    record = await Inventory(store).get("web-1")
    assert record["status"] == "deleted" and record["taskservs"] == []
    Server.model_validate(record)

    again = await delete(ctx, name="web-1")
    assert again["status"] == "deleted" and again["stopped_pids"] == []


async def test_deleting_a_server_that_never_existed_is_fine(ctx: ActionContext) -> None:
    result = await delete(ctx, name="ghost")
    assert result == {
        "name": "ghost",
        "provider": "local",
        "status": "deleted",
        "existed": False,
        "stopped_pids": [],
    }


async def test_a_deleted_server_can_be_created_again(ctx: ActionContext, store: StateStore) -> None:
    await create(ctx, name="web-1")
    await delete(ctx, name="web-1")
    assert (await create(ctx, name="web-1"))["created"] is True
    assert (await Inventory(store).get("web-1"))["status"] == "running"


async def test_server_status_reports_what_the_provider_sees(
    ctx: ActionContext, settings: Settings, store: StateStore
) -> None:
    provider = LocalProvider(settings, store)
    assert (await provider.server_status("web-1"))["status"] == "missing"
    await create(ctx, name="web-1")
    status = await provider.server_status("web-1")
    assert status["status"] == "running" and status["exists"] is True and status["pids"] == []


async def test_a_server_of_another_provider_is_left_alone(
    ctx: ActionContext, settings: Settings, store: StateStore
) -> None:
    await Inventory(store).register("db-1", {"provider": "cloud", "labels": {}, "status": "up"})
    with pytest.raises(ActionError, match="belongs to provider 'cloud'") as failed:
        await create(ctx, name="db-1")
    assert not failed.value.retryable
    with pytest.raises(ActionError, match="belongs to provider 'cloud'"):
        await delete(ctx, name="db-1", provider="local")
    assert (await Inventory(store).get("db-1"))["status"] == "up"
    assert not (settings.servers_dir / "db-1").exists()


async def test_unknown_provider_and_bad_options_are_not_retryable(ctx: ActionContext) -> None:
    with pytest.raises(ActionError, match="unknown provider 'aws'") as unknown:
        await create(ctx, name="web-1", provider="aws")
    assert not unknown.value.retryable and unknown.value.details["code"] == "invalid_input"
    with pytest.raises(ActionError, match="bad options") as bad:
        await create(ctx, name="web-1", options={"cpus": 4})
    assert not bad.value.retryable


def test_names_that_are_not_dns_labels_never_become_paths(settings: Settings) -> None:
    provider = LocalProvider(settings, None)
    for name in ("../etc", "a/b", "Web", ""):
        with pytest.raises(InvalidInput, match="not a valid server name"):
            provider.sandbox(name)
    with pytest.raises(ValueError, match="pattern"):
        ServerCreateParams.model_validate({"name": "../etc"})
    with pytest.raises(ValueError, match="pattern"):  # the same label rules as server.register
        ServerCreateParams.model_validate({"name": "web-1", "labels": {"Bad Key": "x"}})


async def test_without_a_state_store_the_provider_says_what_to_do(
    ctx: ActionContext, settings: Settings
) -> None:
    provider = get_provider("local", settings, None)
    with pytest.raises(Unavailable, match="needs the platform state store"):
        await provider.create_server("web-1", {}, ctx)
    assert "local" in provider_names()
