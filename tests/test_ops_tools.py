"""The ops plane behind the workflow-starting tools, on every tier (HTTP, MCP, CLI) with a
real nats-server, keeper and controller: dev work runs at once, prod work waits for a
second pair of eyes, and with NATS down nothing runs unsigned."""

from __future__ import annotations

import asyncio
import base64
import dataclasses
import json
import subprocess
import sys
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
from registry import Principal, Registry
from registry.canonical import sha256_digest
from servers.assembly import Bus, build_registry
from servers.mcp import build_mcp
from servers.supervisor import serve
from tests.waiting import until

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
    op: dict[str, Any] = {}

    async def finished() -> bool:
        response = await _get(url, key, f"/v1/ops/{op_id}")
        assert response.status_code == 200, response.text
        op.update(response.json()["data"])
        return op["execution"] in {"succeeded", "failed", "dead_lettered"}

    await until(finished, what=f"the end of {op_id}", within_s=DEADLINE_S)
    return op


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

    # An approver sees what they sign: the plan's changes and the digests the token binds,
    # but not its workflow (task params are for the workflow's readers).
    pending = (await _post(url, olga, "ops.get", {"op_id": op_id})).json()["data"]
    assert pending["changes"] == plan["changes"] and "workflow" not in pending
    signed = {"changes": plan["changes"], "workflow": plan["workflow"]}
    assert pending["plan_digest"] == sha256_digest(signed)
    assert pending["state_digest"] == plan["state_digest"] != ""

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
    claims = json.loads(base64.urlsafe_b64decode(op["token"].split(".")[1] + "=="))
    assert (claims["plan_digest"], claims["params_digest"]) == (
        pending["plan_digest"],
        pending["params_digest"],
    )
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

        async def expired() -> bool:
            shown = await registry.invoke("ops.get", {"op_id": op_id}, principal=ada)
            assert shown.ok, shown.error
            return bool(shown.data["status"] == "expired")

        await until(expired, what=f"{op_id} to expire", within_s=DEADLINE_S)
        assert await _audit_outcomes(registry, op_id) == ["approval_required", "expired"]
        late = await registry.invoke("ops.approve", {"op_id": op_id}, principal=apu)
        assert late.code == "conflict"
        assert "approval lifetime passed" in late.error["message"]  # type: ignore[index]
        api = (await registry.resources.get(OrchestratorHandle)).api
        assert (await api.list()).workflows == []


def _tasks(workflow: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [(t["id"], t["action"], t["params"]) for t in workflow["tasks"]]


async def _audited(
    registry: Registry, admin: Principal, trace_ids: set[str]
) -> set[tuple[str, str]]:
    """`(tool, outcome)` of the invocation audit records of these calls, once all landed."""
    found: dict[str, tuple[str, str]] = {}

    async def landed() -> bool:
        page = await registry.invoke("audit.query", {"limit": 500}, principal=admin)
        assert page.ok, page.error
        found.update({r["trace_id"]: (r["tool"], r["outcome"]) for r in page.data["records"]})
        return trace_ids <= set(found)

    await until(landed, what=f"the audit records of {sorted(trace_ids)}", within_s=DEADLINE_S)
    return {found[t] for t in trace_ids}


async def test_an_operator_asks_to_delete_a_prod_server_and_a_second_user_approves(
    plane: Registry, url: str, keystore: KeyStore, admin_key: str
) -> None:
    """The issue's "done when": an operator plans and requests `server.delete` of a prod
    server (MCP), sees the plan, cannot approve it; an approver does (HTTP); the
    controller runs exactly that plan once; every step is audited."""
    admin = await plane.authenticate(admin_key)
    registered = await plane.invoke(
        "server.register", {"name": "prod-1", "labels": {"env": "prod"}}, principal=admin
    )
    assert registered.ok, registered.error
    olga_key = keystore.create("olga", ["operator"])
    olga = await plane.authenticate(olga_key)
    apu = keystore.create("apu", ["approver"])
    args = {"names": ["prod-1"]}
    async with Client(build_mcp(plane, principal=olga)) as mcp:
        planned = await mcp.call_tool("server.delete", {**args, "plan": True})
        asked = await mcp.call_tool("server.delete", args, raise_on_error=False)
        own = await mcp.call_tool("ops.approve", {"op_id": "op-" + "0" * 32}, raise_on_error=False)
    plan = planned.structured_content
    assert plan is not None and [(c["action"], c["name"]) for c in plan["changes"]] == [
        ("delete", "prod-1")
    ]
    assert asked.is_error and asked.structured_content is not None
    error = asked.structured_content["error"]
    assert error["code"] == "approval_required", error
    op_id = error["details"]["op_id"]
    waiting = error["details"]["plan"]["workflow"]  # what the approver sees, and the token binds
    assert (
        _tasks(waiting) == _tasks(plan["workflow"]) and waiting["name"] == plan["workflow"]["name"]
    )
    assert own.is_error and own.structured_content is not None
    assert own.structured_content["error"]["code"] == "forbidden"  # an operator approves nothing
    mine = await _post(url, olga_key, "ops.approve", {"op_id": op_id})
    assert mine.status_code == 403, mine.text
    api = (await plane.resources.get(OrchestratorHandle)).api
    assert (await api.list()).workflows == []  # nothing ran on the operator's word

    approved = await _post(url, apu, "ops.approve", {"op_id": op_id})
    assert approved.status_code == 200, approved.text
    assert approved.json()["data"]["workflow_id"] == op_id
    op = await _until_finished(url, apu, op_id)
    assert (op["execution"], op["requester"], op["approvers"]) == ("succeeded", "olga", ["apu"])
    assert op["rule"] == "prod-needs-approval"
    runs = (await api.list()).workflows
    assert [(w.id, w.state.value) for w in runs] == [(op_id, "succeeded")]  # once
    tasks = await api.tasks(op_id)
    assert [(t.id, t.action, t.params) for t in tasks] == _tasks(plan["workflow"])
    again = await _post(url, apu, "ops.approve", {"op_id": op_id})
    assert again.status_code == 409
    assert await _audit_outcomes(plane, op_id) == ["approval_required", "approved", "succeeded"]
    steps = {approved.json()["trace_id"], mine.json()["trace_id"], again.json()["trace_id"]}
    assert await _audited(plane, admin, steps) == {
        ("ops.approve", "ok"),
        ("ops.approve", "forbidden"),
        ("ops.approve", "conflict"),
    }
    page = await plane.invoke(
        "audit.query", {"principal": "olga", "tool": "server.delete"}, principal=admin
    )
    assert page.ok and {r["outcome"] for r in page.data["records"]} == {
        "plan",
        "approval_required",
    }


async def test_a_prod_change_an_operator_asks_for_waits_even_where_the_rule_auto_approves(
    workspace: Settings, keystore: KeyStore
) -> None:
    """A workspace whose keeper policy auto-approves everything still cannot let an
    operator's prod change run alone: Cedar allowed it only as a request."""
    ws = workspace.config_dir
    schema = PROJECT_ROOT / "config" / "schemas" / "keeper_policy.ncl"
    (ws / "schemas" / "keeper_policy.ncl").write_text(schema.read_text())
    (ws / "keeper_policy.ncl").write_text(
        'let p = import "schemas/keeper_policy.ncl" in\n'
        '{ rules = [{ name = "all", decision = \'auto_approve }] } | p.Policy\n'
    )
    async with build_registry(workspace, keystore=keystore) as registry:
        admin = keystore.owner()
        await registry.invoke(
            "server.register", {"name": "prod-1", "labels": {"env": "prod"}}, principal=admin
        )
        olga = await registry.authenticate(keystore.create("olga", ["operator"]))
        vic = await registry.authenticate(keystore.create("vic", ["viewer"]))
        refused = await registry.invoke("server.delete", {"names": ["prod-1"]}, principal=vic)
        assert refused.code == "forbidden"  # a viewer asks for nothing
        asked = await registry.invoke("server.delete", {"names": ["prod-1"]}, principal=olga)
        assert asked.code == "approval_required", asked.error
        assert asked.error["details"]["rule"] == "all+second-user"  # type: ignore[index]
        ran = await registry.invoke("server.delete", {"names": ["prod-1"]}, principal=admin)
        assert ran.ok, ran.error  # an admin's is the rule's to decide


async def test_approving_a_plan_whose_state_changed_is_refused_and_nothing_runs(
    plane: Registry, url: str, keystore: KeyStore, admin_key: str
) -> None:
    admin = await plane.authenticate(admin_key)
    prod = {"name": "prod-1", "labels": {"env": "prod"}}
    assert (await plane.invoke("server.register", prod, principal=admin)).ok
    ada = await plane.authenticate(keystore.create("ada", ["admin"]))
    apu = keystore.create("apu", ["approver"])
    planned = await plane.invoke(
        "server.delete", {"names": ["prod-1"], "plan": True}, principal=ada
    )
    asked = await plane.invoke("server.delete", {"names": ["prod-1"]}, principal=ada)
    assert asked.code == "approval_required", asked.error
    op_id = asked.error["details"]["op_id"]  # type: ignore[index]  # set when refused
    # Meanwhile someone changes the server the plan was computed on.
    assert (await plane.invoke("server.remove", {"name": "prod-1"}, principal=admin)).ok
    changed = {"name": "prod-1", "labels": {"env": "prod", "tier": "db"}}
    assert (await plane.invoke("server.register", changed, principal=admin)).ok

    late = await _post(url, apu, "ops.approve", {"op_id": op_id})
    assert late.status_code == 409, late.text
    message = late.json()["error"]["message"]
    assert "changed since the plan" in message and "prvng server delete ... --plan" in message
    op = (await _get(url, apu, f"/v1/ops/{op_id}")).json()["data"]
    assert (op["status"], op["approvers"], op["execution"]) == ("pending", [], None)
    api = (await plane.resources.get(OrchestratorHandle)).api
    assert (await api.list()).workflows == []
    assert await _audit_outcomes(plane, op_id) == ["approval_required", "stale_plan"]
    again = await plane.invoke("server.delete", {"names": ["prod-1"], "plan": True}, principal=ada)
    assert again.data["state_digest"] != planned.data["state_digest"]  # re-planning shows it


async def test_a_rollback_of_prod_work_waits_for_an_approver_and_runs_that_plan_once(
    plane: Registry, url: str, keystore: KeyStore
) -> None:
    ada = await plane.authenticate(keystore.create("ada", ["admin"]))
    apu_key = keystore.create("apu", ["approver"])
    apu = await plane.authenticate(apu_key)
    task = {"id": "a", "action": "noop", "compensate": {"action": "noop"}}
    spec = {"id": "rb-prod", "name": "rb-prod", "labels": {"env": "prod"}, "tasks": [task]}
    submitted = await plane.invoke("workflow.submit", spec, principal=ada)
    assert submitted.code == "approval_required", submitted.error
    assert (await plane.invoke("ops.approve", {"op_id": "rb-prod"}, principal=apu)).ok
    assert (await plane.invoke("workflow.wait", {"id": "rb-prod"}, principal=ada)).ok

    planned = await plane.invoke(
        "workflow.rollback", {"id": "rb-prod", "plan": True}, principal=ada
    )
    assert planned.ok and planned.data["workflow"]["command"] == "rollback"
    asked, twice = [
        await plane.invoke("workflow.rollback", {"id": "rb-prod"}, principal=ada) for _ in "12"
    ]
    assert asked.code == twice.code == "approval_required", asked.error
    details = asked.error["details"]  # type: ignore[index]  # set when refused
    op_id = details["op_id"]
    assert details["plan"]["workflow"] == planned.data["workflow"]  # what the approver signs
    api = (await plane.resources.get(OrchestratorHandle)).api
    assert (await api.get("rb-prod")).state.value == "succeeded"  # nothing ran yet

    approved = await _post(url, apu_key, "ops.approve", {"op_id": op_id})
    assert approved.status_code == 200, approved.text
    assert approved.json()["data"]["workflow_id"] == "rb-prod"
    op = await _until_finished(url, apu_key, op_id)
    assert (op["execution"], op["workflow_id"], op["approvers"]) == (
        "succeeded",
        "rb-prod",
        ["apu"],
    )
    assert (await api.get("rb-prod")).state.value == "rolled_back"
    (ran,) = await api.tasks("rb-prod")
    assert ran.compensation is not None and ran.compensation.attempts == 1
    assert await _audit_outcomes(plane, op_id) == ["approval_required", "approved", "succeeded"]
    # The second request was planned on the workflow before the rollback: stale now.
    other = twice.error["details"]["op_id"]  # type: ignore[index]  # set when refused
    stale = await _post(url, apu_key, "ops.approve", {"op_id": other})
    assert stale.status_code == 409 and "changed since the plan" in stale.text
    assert "prvng workflow rollback ... --plan" in stale.json()["error"]["message"]


async def test_a_retry_is_an_op_too(plane: Registry, admin_key: str) -> None:
    """Auto-approved where the policy says so (an unlabelled local workflow), yet signed,
    carried and run by the controller, and audited like every op."""
    admin = await plane.authenticate(admin_key)
    flaky = {"command": "test -f once || { touch once; exit 1; }"}
    spec = {
        "id": "rt-1",
        "name": "rt-1",
        "on_failure": "stop",
        "tasks": [{"id": "b", "action": "shell", "params": flaky}],
        "wait": True,
    }
    failed = await plane.invoke("workflow.submit", spec, principal=admin)
    assert failed.code == "workflow_failed", failed.error
    retried = await plane.invoke("workflow.retry", {"id": "rt-1"}, principal=admin)
    assert retried.ok and retried.data["state"] == "succeeded", retried.error
    listed = await plane.invoke("ops.list", {"type": "workflow.retry"}, principal=admin)
    ((op,),) = [listed.data["ops"]]
    assert (op["status"], op["rule"]) == ("published", "local-unlabelled")
    shown = await plane.invoke("ops.get", {"op_id": op["op_id"]}, principal=admin)
    assert shown.data["workflow_id"] == "rt-1"
    assert await _audit_outcomes(plane, op["op_id"]) == ["auto_approved", "succeeded"]
    again = await plane.invoke("workflow.retry", {"id": "rt-1"}, principal=admin)
    assert again.code == "conflict"  # nothing left to retry: the orchestrator says so
