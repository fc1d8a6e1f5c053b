"""Workflow templates from the shipped workspace config, checked against the real actions."""

from __future__ import annotations

import copy
import socket
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from daemons.common.inventory import Inventory
from daemons.common.settings import Settings
from daemons.common.state import StateStore
from daemons.ncl_sync import ConfigCache
from daemons.orchestrator.actions import ActionContext, load_actions
from daemons.orchestrator.model import Compensation, TaskSpec, WorkflowSpec
from daemons.orchestrator.provisioning.taskservs import catalog_for
from daemons.orchestrator.provisioning.templates import (
    server_delete_workflow,
    servers_create_workflow,
    taskserv_create_workflow,
    taskserv_delete_workflow,
)
from registry.errors import InvalidInput, NotFound
from tools.config.nickel import evaluate

ACTIONS = load_actions(("shell", "http_request", "server", "taskserv"))


@pytest.fixture
async def workspace(settings: Settings) -> dict[str, Any]:
    value: dict[str, Any] = await evaluate(
        ConfigCache(settings.config_cache_dir), settings.config_dir, "workspace.ncl"
    )
    return value


def check_params(spec: WorkflowSpec) -> None:
    """Every task and compensation passes its action's own params model."""
    for task in spec.tasks:
        ACTIONS[task.action].params_model.model_validate(task.params)
        if task.compensate is not None:
            ACTIONS[task.compensate.action].params_model.model_validate(task.compensate.params)


def test_servers_create_from_the_shipped_workspace(
    workspace: dict[str, Any], settings: Settings
) -> None:
    spec = servers_create_workflow(workspace, catalog=catalog_for(settings))
    assert spec.name == "servers-create-demo"
    assert spec.labels == {"template": "servers-create", "workspace": "demo"}
    tasks = {t.id: t for t in spec.tasks}
    assert list(tasks) == [
        "create.web-1",
        "install.web-1.static-web",
        "create.kv-1",
        "install.kv-1.kv-store",
    ]
    web = tasks["create.web-1"]
    assert (web.action, web.params, web.depends_on) == (
        "server.create",
        {"name": "web-1", "provider": "local", "labels": {"env": "dev", "tier": "web"}},
        [],
    )
    assert web.compensate is not None and web.compensate.action == "server.delete"
    install = tasks["install.web-1.static-web"]
    assert install.params == {
        "server": "web-1",
        "taskserv": "static-web",
        "settings": {"port": 18081},
    }
    assert install.depends_on == ["create.web-1"]
    assert install.compensate is not None and install.compensate.action == "taskserv.remove"
    assert tasks["install.kv-1.kv-store"].params["settings"] == {}
    check_params(spec)


def test_servers_create_for_some_servers_only(workspace: dict[str, Any]) -> None:
    spec = servers_create_workflow(workspace, ["kv-1", "kv-1"])
    assert [t.id for t in spec.tasks] == ["create.kv-1", "install.kv-1.kv-store"]
    with pytest.raises(InvalidInput, match=r"\['db-9'\] are not in workspace 'demo'") as bad:
        servers_create_workflow(workspace, ["web-1", "db-9"])
    assert bad.value.details["available"] == ["web-1", "kv-1"]


def test_bad_workspaces_are_refused_with_the_reason(
    workspace: dict[str, Any], settings: Settings
) -> None:
    broken = copy.deepcopy(workspace)
    broken["servers"][0]["taskservs"][0]["port"] = 70000
    with pytest.raises(InvalidInput, match="value of `port`"):
        servers_create_workflow(broken, catalog=catalog_for(settings))
    broken["servers"][0]["taskservs"][0] = {"name": "mail"}
    with pytest.raises(NotFound, match="no taskserv named 'mail'"):
        servers_create_workflow(broken, catalog=catalog_for(settings))
    twice = copy.deepcopy(workspace)
    twice["servers"].append(twice["servers"][0])
    with pytest.raises(InvalidInput, match="more than once"):
        servers_create_workflow(twice)
    with pytest.raises(InvalidInput, match=r"at servers\.0\.name"):
        servers_create_workflow({"name": "x", "servers": [{"name": "Bad_Name"}]})
    with pytest.raises(InvalidInput, match="no servers to create"):
        servers_create_workflow({"name": "empty"})


def test_taskserv_and_delete_templates(settings: Settings) -> None:
    spec = taskserv_create_workflow(
        "web-1", "static-web", {"port": 8088}, catalog=catalog_for(settings)
    )
    [task] = spec.tasks
    assert (task.id, task.action, task.depends_on) == (
        "install.web-1.static-web",
        "taskserv.install",
        [],
    )
    assert task.params["settings"] == {"port": 8088}
    assert task.compensate is not None and task.compensate.params == task.params
    check_params(spec)
    with pytest.raises(InvalidInput, match="value of `port`"):
        taskserv_create_workflow("web-1", "static-web", {"port": -1}, catalog=catalog_for(settings))
    with pytest.raises(InvalidInput, match="not a valid server name"):
        taskserv_create_workflow("Web 1", "static-web")

    removal = taskserv_delete_workflow("web-1", "kv-store")
    assert [t.action for t in removal.tasks] == ["taskserv.remove"]
    deletion = server_delete_workflow(["web-1", "kv-1", "web-1"])
    assert [t.id for t in deletion.tasks] == ["delete.web-1", "delete.kv-1"]
    assert all(t.compensate is None and not t.depends_on for t in deletion.tasks)
    check_params(removal)
    check_params(deletion)
    with pytest.raises(InvalidInput):
        server_delete_workflow([])


async def _run(
    task: TaskSpec | Compensation, ctx_for: Callable[[TaskSpec | Compensation], ActionContext]
) -> dict[str, Any]:
    action = ACTIONS[task.action]
    result: dict[str, Any] = await action.run(
        action.params_model.model_validate(task.params), ctx_for(task)
    )
    return result


async def test_the_servers_create_workflow_runs_and_its_compensations_undo_it(
    workspace: dict[str, Any], settings: Settings, store: StateStore, tmp_path: Path
) -> None:
    """Tasks in order, then compensations in reverse, as the engine would (without it)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = int(sock.getsockname()[1])
    workspace["servers"][0]["taskservs"][0]["port"] = port
    spec = servers_create_workflow(workspace, catalog=catalog_for(settings))

    def ctx_for(task: TaskSpec | Compensation) -> ActionContext:
        return ActionContext(
            workflow_id="wf-t",
            task_id=getattr(task, "id", "undo"),
            attempt=1,
            idempotency_key=f"wf-t/{getattr(task, 'id', 'undo')}",
            workspace=tmp_path / "work",
            settings=settings,
            log=lambda _stream, _text: None,
            state=store,
        )

    done: list[TaskSpec] = []
    try:
        for task in spec.tasks:
            await _run(task, ctx_for)
            done.append(task)
        async with httpx.AsyncClient() as client:
            assert (await client.get(f"http://127.0.0.1:{port}/")).status_code == 200
        servers = {s["name"]: s for s in await Inventory(store).list()}
        assert {n: s["status"] for n, s in servers.items()} == {
            "kv-1": "running",
            "web-1": "running",
        }
        assert [t["name"] for t in servers["kv-1"]["taskservs"]] == ["kv-store"]
    finally:
        for task in reversed(done):
            assert task.compensate is not None
            await _run(task.compensate, ctx_for)
    servers = {s["name"]: s for s in await Inventory(store).list()}
    assert {n: s["status"] for n, s in servers.items()} == {"kv-1": "deleted", "web-1": "deleted"}
    assert not any(settings.servers_dir.iterdir())
    with socket.socket() as sock:
        assert sock.connect_ex(("127.0.0.1", port)) != 0
