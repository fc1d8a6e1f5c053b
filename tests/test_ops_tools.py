"""The ops plane behind the workflow-starting tools, on every tier (HTTP, MCP, CLI) with a
real nats-server, keeper and controller: dev work runs at once, prod work waits for a
second pair of eyes, and with NATS down nothing runs unsigned."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastmcp import Client

from daemons.bus import AUDIT_STREAM
from daemons.common.keystore import KeyStore
from daemons.common.settings import PROJECT_ROOT, Settings
from daemons.orchestrator.protocol import OrchestratorHandle
from registry import Registry
from servers.assembly import Bus, build_registry
from servers.mcp import build_mcp
from servers.supervisor import serve

PRVNG = str(Path(sys.executable).with_name("prvng"))
DEADLINE_S = 30.0


@pytest.fixture
def workspace(tmp_path: Path, settings: Settings) -> Settings:
    """Settings on a workspace of two local servers, one env=dev and one env=prod."""
    ws = tmp_path / "ws"
    ws.mkdir()
    (ws / "schemas").mkdir()
    schema = (PROJECT_ROOT / "config" / "schemas" / "server.ncl").read_text()
    (ws / "schemas" / "server.ncl").write_text(schema)  # imports stay inside the workspace
    (ws / "workspace.ncl").write_text(
        'let s = import "schemas/server.ncl" in\n'
        '{ name = "ops", servers = ['
        '{ name = "dev-1", labels = { env = "dev" } }, '
        '{ name = "prod-1", labels = { env = "prod" } }'
        "] } | s.Workspace\n"
    )
    return dataclasses.replace(settings, config_dir=ws)


@pytest.fixture
async def plane(workspace: Settings, keystore: KeyStore) -> AsyncIterator[Registry]:
    async with build_registry(workspace, keystore=keystore) as registry:
        yield registry


@pytest.fixture
async def url(plane: Registry, workspace: Settings) -> AsyncIterator[str]:
    async with serve(plane, workspace) as base:
        yield base


async def _post(url: str, key: str, tool: str, args: dict[str, Any]) -> httpx.Response:
    async with httpx.AsyncClient(base_url=url, trust_env=False, timeout=60) as client:
        return await client.post(
            f"/v1/tools/{tool}", json=args, headers={"Authorization": f"Bearer {key}"}
        )


async def _get(url: str, key: str, path: str) -> httpx.Response:
    async with httpx.AsyncClient(base_url=url, trust_env=False, timeout=60) as client:
        return await client.get(path, headers={"Authorization": f"Bearer {key}"})


async def _until_finished(url: str, key: str, op_id: str) -> dict[str, Any]:
    """`ops.get` until the controller recorded the op's end (it does so after the workflow)."""
    deadline = time.monotonic() + DEADLINE_S
    while True:
        response = await _get(url, key, f"/v1/ops/{op_id}")
        assert response.status_code == 200, response.text
        op: dict[str, Any] = response.json()["data"]
        if op["execution"] in {"succeeded", "failed", "dead_lettered"}:
            return op
        assert time.monotonic() < deadline, op
        await asyncio.sleep(0.02)  # polled against the deadline


async def _audit_outcomes(registry: Registry, op_id: str) -> list[str]:
    js = registry.resources.peek(Bus).nc.jetstream()
    sub = await js.pull_subscribe("ops.audit.>", stream=AUDIT_STREAM)
    try:
        info = await js.stream_info(AUDIT_STREAM)
        messages = await sub.fetch(info.state.messages, timeout=5)
    finally:
        await sub.unsubscribe()
    events = [json.loads(m.data) for m in messages]
    return [e["outcome"] for e in events if e.get("op_id") == op_id]


async def test_an_operator_creates_a_dev_server_at_once_through_the_ops_plane(
    plane: Registry, url: str, keystore: KeyStore, admin_key: str
) -> None:
    olga = keystore.create("olga", ["operator"])
    created = await _post(url, olga, "server.create", {"names": ["dev-1"], "wait": True})
    assert created.status_code == 200, created.text
    workflow = created.json()["data"]
    assert workflow["state"] == "succeeded" and workflow["id"].startswith("op-")

    listed = await _get(url, olga, "/v1/ops?type=server.create")
    assert [
        (o["op_id"], o["status"], o["requester"], o["rule"]) for o in listed.json()["data"]["ops"]
    ] == [(workflow["id"], "published", "olga", "dev")]
    op = await _until_finished(url, olga, workflow["id"])
    assert (op["execution"], op["workflow_id"], op["decision"]) == (
        "succeeded",
        workflow["id"],
        "auto_approve",
    )
    assert op["token"].count(".") == 2  # the compact JWS the controller verified
    assert await _audit_outcomes(plane, workflow["id"]) == ["auto_approved", "succeeded"]

    metrics = await _get(url, admin_key, "/metrics")
    assert 'prvng_controller_acks_total{result="ack"} 1.0' in metrics.text


async def test_prod_work_waits_for_a_second_approver_on_another_tier(
    plane: Registry, url: str, keystore: KeyStore
) -> None:
    ada = keystore.create("ada", ["admin"])
    apu_principal = await plane.authenticate(keystore.create("apu", ["approver"]))
    olga = keystore.create("olga", ["operator"])

    asked = await _post(url, ada, "server.create", {"names": ["prod-1"], "wait": True})
    assert asked.status_code == 202, asked.text
    error = asked.json()["error"]
    assert error["code"] == "approval_required"
    op_id = error["details"]["op_id"]
    plan = error["details"]["plan"]  # what the approver sees, and what the token binds
    assert plan["workflow"]["tasks"][0]["params"]["name"] == "prod-1"
    assert [(c["action"], c["name"]) for c in plan["changes"]] == [("create", "prod-1")]
    api = (await plane.resources.get(OrchestratorHandle)).api
    assert (await api.list()).workflows == []  # nothing ran

    own = await _post(url, ada, "ops.approve", {"op_id": op_id})
    assert own.status_code == 403 and "four-eyes" in own.json()["error"]["message"]
    assert (await _post(url, olga, "ops.approve", {"op_id": op_id})).status_code == 403

    async with Client(build_mcp(plane, principal=apu_principal)) as mcp:
        approved = await mcp.call_tool("ops.approve", {"op_id": op_id})
    assert approved.structured_content is not None
    assert approved.structured_content["status"] == "published"
    assert approved.structured_content["workflow_id"] == op_id

    op = await _until_finished(url, ada, op_id)
    assert (op["execution"], op["approvers"], op["requester"]) == ("succeeded", ["apu"], "ada")
    again = await _post(url, ada, "ops.approve", {"op_id": op_id})
    assert again.status_code == 409  # no second run
    runs = (await api.list()).workflows
    assert [(w.id, w.state.value) for w in runs] == [(op_id, "succeeded")]
    assert await _audit_outcomes(plane, op_id) == ["approval_required", "approved", "succeeded"]

    argv = [PRVNG, "ops", "get", "--op-id", op_id, "--url", url, "--api-key", olga]
    shown = await asyncio.to_thread(
        subprocess.run, argv, capture_output=True, text=True, timeout=60, check=False
    )
    assert shown.returncode == 0, shown.stderr
    assert json.loads(shown.stdout)["execution"] == "succeeded"


async def test_a_pending_op_is_cancelled_by_its_requester_only(
    plane: Registry, url: str, keystore: KeyStore
) -> None:
    ada = keystore.create("ada", ["admin"])
    olga = keystore.create("olga", ["operator"])
    asked = await _post(url, ada, "server.create", {"names": ["prod-1"]})
    op_id = asked.json()["error"]["details"]["op_id"]
    assert (await _post(url, olga, "ops.cancel", {"op_id": op_id})).status_code == 403
    cancelled = await _post(url, ada, "ops.cancel", {"op_id": op_id})
    assert cancelled.status_code == 200 and cancelled.json()["data"]["status"] == "cancelled"
    assert (await _post(url, ada, "ops.approve", {"op_id": op_id})).status_code == 409


async def test_with_nats_down_gated_tools_answer_unavailable_and_nothing_runs(
    workspace: Settings, keystore: KeyStore
) -> None:
    down = dataclasses.replace(workspace, nats_url="nats://127.0.0.1:1")
    async with build_registry(down, keystore=keystore) as registry:
        owner = keystore.owner()
        body = {"name": "x", "tasks": [{"id": "a", "action": "noop"}]}
        refused = await registry.invoke("workflow.submit", body, principal=owner)
        assert refused.error is not None and refused.error["code"] == "unavailable"
        assert "PRVNG_NATS_URL" in refused.error["message"]
        api = (await registry.resources.get(OrchestratorHandle)).api
        assert (await api.list()).workflows == []


async def test_the_keeper_expires_pending_ops_on_its_own(
    workspace: Settings, keystore: KeyStore
) -> None:
    """With a short approval lifetime and sweep interval, a pending op turns `expired`
    (audited) without anyone touching it, and approving it then says why it cannot."""
    ws = workspace.config_dir
    schema = PROJECT_ROOT / "config" / "schemas" / "keeper_policy.ncl"
    (ws / "schemas" / "keeper_policy.ncl").write_text(schema.read_text())
    policy = (PROJECT_ROOT / "config" / "keeper_policy.ncl").read_text()
    (ws / "keeper_policy.ncl").write_text(
        policy.replace("approval_ttl_s = 3600", "approval_ttl_s = 0.3")
    )
    short = dataclasses.replace(workspace, ops_expire_interval_s=0.05)
    async with build_registry(short, keystore=keystore) as registry:
        ada = await registry.authenticate(keystore.create("ada", ["admin"]))
        apu = await registry.authenticate(keystore.create("apu", ["approver"]))
        asked = await registry.invoke("server.create", {"names": ["prod-1"]}, principal=ada)
        assert asked.code == "approval_required", asked.error
        op_id = asked.error["details"]["op_id"]  # type: ignore[index]  # set when refused
        deadline = time.monotonic() + DEADLINE_S
        while True:
            shown = await registry.invoke("ops.get", {"op_id": op_id}, principal=ada)
            assert shown.ok, shown.error
            if shown.data["status"] == "expired":
                break
            assert time.monotonic() < deadline, shown.data
            await asyncio.sleep(0.02)  # polled against the deadline
        assert await _audit_outcomes(registry, op_id) == ["approval_required", "expired"]
        late = await registry.invoke("ops.approve", {"op_id": op_id}, principal=apu)
        assert late.code == "conflict"
        assert "approval lifetime passed" in late.error["message"]  # type: ignore[index]
        api = (await registry.resources.get(OrchestratorHandle)).api
        assert (await api.list()).workflows == []
