"""Who may see and control a workflow, over real HTTP: raw execution's output is its
owner's (and an admin's); controlling a workflow is decided like submitting it; a raw
submission of a provisioning task obeys the server rules.

Each attack is refused with `forbidden` (403); each test also shows the allowed case.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from fastmcp import Client

from daemons.common.keystore import KeyStore
from daemons.common.settings import Settings
from registry import Registry
from servers.mcp import build_mcp
from servers.supervisor import serve
from tests.conftest import environ_snapshot

SECRET = "s3cr3t-printed-by-admin"


@pytest.fixture
async def url(registry: Registry, settings: Settings, admin_key: str) -> AsyncIterator[str]:
    async with serve(registry, settings) as base:
        yield base


@pytest.fixture
def viewer_key(keystore: KeyStore) -> str:
    return keystore.create("vic", ["viewer"])


@pytest.fixture
def operator_key(keystore: KeyStore) -> str:
    return keystore.create("olga", ["operator"])


async def _call(url: str, key: str, tool: str, args: dict[str, Any]) -> httpx.Response:
    async with httpx.AsyncClient(base_url=url, trust_env=False, timeout=60) as client:
        return await client.post(
            f"/v1/tools/{tool}", json=args, headers={"Authorization": f"Bearer {key}"}
        )


def _ok(response: httpx.Response) -> Any:
    assert response.status_code == 200, response.text
    return response.json()["data"]


def _refused(response: httpx.Response) -> None:
    assert response.status_code == 403, response.text
    assert response.json()["error"]["code"] == "forbidden"


def _held(response: httpx.Response) -> None:
    """Asked for, not run: the keeper holds it for an approver."""
    assert response.status_code == 202, response.text
    assert response.json()["error"]["code"] == "approval_required"


def _wf(wf_id: str, *tasks: dict[str, Any], **fields: Any) -> dict[str, Any]:
    return {"id": wf_id, "name": wf_id, "tasks": list(tasks), "wait": True, **fields}


def _shell(command: str, task_id: str = "t") -> dict[str, Any]:
    return {"id": task_id, "action": "shell", "params": {"command": command}}


@pytest.fixture
async def secret_run(url: str, admin_key: str) -> str:
    """An admin's shell workflow that printed a secret, and a plain one beside it."""
    _ok(await _call(url, admin_key, "workflow.submit", _wf("adm-sh", _shell(f"echo {SECRET}"))))
    _ok(
        await _call(
            url, admin_key, "workflow.submit", _wf("adm-noop", {"id": "n", "action": "noop"})
        )
    )
    return "adm-sh"


async def test_a_viewer_reads_nothing_of_an_admins_shell_run(
    url: str, admin_key: str, viewer_key: str, secret_run: str
) -> None:
    one = {"workflow_id": secret_run, "task_id": "t"}
    _refused(await _call(url, viewer_key, "task.logs", one))
    _refused(await _call(url, viewer_key, "task.get", one))
    _refused(await _call(url, viewer_key, "task.list", {"workflow_id": secret_run}))
    _refused(await _call(url, viewer_key, "workflow.get", {"id": secret_run}))
    _refused(await _call(url, viewer_key, "workflow.wait", {"id": secret_run}))
    _refused(await _call(url, viewer_key, "workflow.events", {"workflow_id": secret_run}))
    # The owner (an admin) still reads it all.
    logs = _ok(await _call(url, admin_key, "task.logs", one))
    assert any(SECRET in line["text"] for line in logs["lines"])


async def test_listings_and_streams_leave_out_what_the_caller_may_not_read(
    url: str, viewer_key: str, secret_run: str
) -> None:
    listed = _ok(await _call(url, viewer_key, "workflow.list", {}))
    assert [wf["id"] for wf in listed["workflows"]] == ["adm-noop"]
    tasks = _ok(await _call(url, viewer_key, "task.list", {}))
    assert {t["workflow_id"] for t in tasks["tasks"]} == {"adm-noop"}
    page = _ok(await _call(url, viewer_key, "workflow.events", {"since": 0}))
    assert page["events"] and {e["workflow_id"] for e in page["events"]} == {"adm-noop"}
    headers = {"Authorization": f"Bearer {viewer_key}"}
    async with httpx.AsyncClient(base_url=url, trust_env=False) as client:
        sse = await client.get(
            "/v1/streams/workflow.events", params={"workflow_id": secret_run}, headers=headers
        )
        assert sse.status_code == 403, sse.text
        plain = await client.get(
            "/v1/streams/workflow.events",
            params={"workflow_id": "adm-noop", "since": 0, "until_finished": "true"},
            headers=headers,
        )
        assert plain.status_code == 200 and "adm-noop" in plain.text
    assert SECRET not in plain.text


async def test_the_owner_label_cannot_be_forged(url: str, admin_key: str) -> None:
    forged = _wf("forged", {"id": "n", "action": "noop"}, labels={"prvng.owner": "vic"})
    response = await _call(url, admin_key, "workflow.submit", forged)
    assert response.status_code == 422, response.text
    mine = _ok(
        await _call(url, admin_key, "workflow.submit", _wf("mine", {"id": "n", "action": "noop"}))
    )
    assert mine["labels"]["prvng.owner"] == "admin"


async def test_an_operator_cannot_rerun_an_admins_shell_tasks(
    url: str, admin_key: str, operator_key: str
) -> None:
    """Retry, rollback and cancel run a workflow's tasks (or compensations) again: they
    are decided like submitting it, so the raw-execution rule applies."""
    undo = {"action": "shell", "params": {"command": "echo undo"}}
    failed = _wf(
        "adm-fail",
        {**_shell("echo ok", "a"), "compensate": undo},
        _shell("exit 1", "b"),
        on_failure="stop",
        wait=False,
    )
    _ok(await _call(url, admin_key, "workflow.submit", failed))
    settled = await _call(url, admin_key, "workflow.wait", {"id": "adm-fail"})
    assert settled.json()["error"]["code"] == "workflow_failed", settled.text
    for tool in ("workflow.retry", "workflow.rollback", "workflow.cancel"):
        _refused(await _call(url, operator_key, tool, {"id": "adm-fail"}))
    plain = _wf("adm-plain", {"id": "n", "action": "noop", "compensate": {"action": "noop"}})
    _ok(await _call(url, admin_key, "workflow.submit", plain))
    _ok(await _call(url, operator_key, "workflow.rollback", {"id": "adm-plain"}))


def _create(name: str, env: str) -> dict[str, Any]:
    params = {"name": name, "provider": "local", "labels": {"env": env}}
    return {"id": f"c-{name}", "action": "server.create", "params": params}


async def test_an_operator_only_asks_for_prod_servers_even_by_naming_the_action(
    url: str, admin_key: str, operator_key: str, keystore: KeyStore
) -> None:
    """An operator's change to an env=prod server is a request an approver must approve;
    a raw submission of a `server.create|delete` task is held the same way (tasks and
    compensations alike), and so is rolling back a workflow that acts on one."""
    _held(await _call(url, operator_key, "workflow.submit", _wf("raw-p", _create("p-9", "prod"))))
    hidden = {
        "id": "n",
        "action": "noop",
        "compensate": {"action": "server.create", "params": _create("p-8", "prod")["params"]},
    }
    _held(await _call(url, operator_key, "workflow.submit", _wf("raw-c", hidden)))
    _ok(await _call(url, admin_key, "server.register", {"name": "p-1", "labels": {"env": "prod"}}))
    delete = {"id": "d", "action": "server.delete", "params": {"name": "p-1"}}
    _held(await _call(url, operator_key, "workflow.submit", _wf("raw-d", delete)))
    # Admin's noop whose compensation deletes the prod server: an operator asks to undo it.
    undo = {
        "id": "n",
        "action": "noop",
        "compensate": {"action": "server.delete", "params": {"name": "p-1"}},
    }
    # It acts on a prod server: the keeper holds it until someone else approves.
    _held(await _call(url, admin_key, "workflow.submit", _wf("adm-undo", undo)))
    _ok(
        await _call(url, keystore.create("apu", ["approver"]), "ops.approve", {"op_id": "adm-undo"})
    )
    _held(await _call(url, operator_key, "workflow.rollback", {"id": "adm-undo"}))
    viewer = keystore.create("vic", ["viewer"])
    _refused(await _call(url, viewer, "workflow.rollback", {"id": "adm-undo"}))
    _refused(await _call(url, viewer, "workflow.submit", _wf("raw-v", delete)))
    dev = _ok(
        await _call(url, operator_key, "workflow.submit", _wf("raw-dev", _create("d-9", "dev")))
    )
    assert dev["state"] == "succeeded"


async def test_every_tier_gives_the_same_refusal(
    registry: Registry, keystore: KeyStore, url: str, viewer_key: str, secret_run: str
) -> None:
    """In process, over MCP and over the CLI (a real subprocess) the viewer's read of the
    admin's shell run is `forbidden` with the same message."""
    viewer = keystore.check(viewer_key)
    assert viewer is not None
    args = {"workflow_id": secret_run, "task_id": "t"}
    direct = await registry.invoke("task.logs", args, principal=viewer)
    assert direct.code == "forbidden"
    async with Client(build_mcp(registry, principal=viewer)) as client:
        mcp = await client.call_tool("task.logs", args, raise_on_error=False)
    assert mcp.is_error and mcp.structured_content is not None
    assert mcp.structured_content["error"]["code"] == "forbidden"
    argv = [sys.executable, "-m", "servers.cli", "call", "task.logs", "--json", json.dumps(args)]
    argv += ["--url", url, "--api-key", viewer_key, "--output", "json"]
    done = await asyncio.to_thread(
        subprocess.run, argv, env=environ_snapshot(), capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 4, done.stderr
    cli = json.loads(done.stderr)["error"]
    http = (await _call(url, viewer_key, "task.logs", args)).json()["error"]
    assert direct.error is not None
    messages = {direct.error["message"], mcp.structured_content["error"]["message"], cli["message"]}
    assert messages == {http["message"]}
