"""Plans: a workflow-starting tool called with `plan: true` says what it would run and
change, with digests, and runs nothing. (Every tier answers the same plan: the contract
cases named "plan" in tools/ check that.)"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from daemons.common.keystore import KeyStore
from daemons.common.settings import Settings
from registry import Principal, Registry
from tests.conftest import environ_snapshot

LAB = {"config": "examples/lab.ncl", "names": ["lab-1"]}
PRVNG = str(Path(sys.executable).with_name("prvng"))


async def _call(registry: Registry, who: Principal, tool: str, **args: Any) -> Any:
    env = await registry.invoke(tool, args, principal=who)
    assert env.ok, env.error
    return env.data


def _files(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*")) if root.exists() else []


async def _world(registry: Registry, owner: Principal, settings: Settings) -> Any:
    """What a plan must not touch: workflows, the inventory, the journal's files."""
    workflows = await _call(registry, owner, "workflow.list")
    servers = await _call(registry, owner, "server.list", all=True)
    return workflows["workflows"], servers["servers"], _files(settings.journal_dir)


async def test_a_plan_says_what_would_change_and_writes_nothing(
    registry: Registry, owner: Principal, settings: Settings
) -> None:
    before = await _world(registry, owner, settings)
    plan = await _call(registry, owner, "server.create", config=LAB["config"], plan=True)
    assert plan["kind"] == "plan" and plan["op"] == "server.create"
    assert {(c["action"], c["kind"], c["name"]) for c in plan["changes"]} == {
        ("create", "server", "lab-1"),
        ("create", "server", "lab-2"),
        ("create", "taskserv", "lab-2/kv-store"),
    }
    assert {t["name"]: t["labels"] for t in plan["targets"]} == {
        "lab-1": {"env": "lab"},
        "lab-2": {"env": "lab"},
    }
    assert plan["workflow"]["labels"]["prvng.owner"] == owner.id
    assert await _world(registry, owner, settings) == before


async def test_the_planned_workflow_is_the_one_that_runs(
    registry: Registry, owner: Principal
) -> None:
    plan = await _call(registry, owner, "server.create", **LAB, id="p-run", plan=True)
    view = await _call(registry, owner, "server.create", **LAB, id="p-run", wait=True)
    tasks = (await _call(registry, owner, "task.list", workflow_id="p-run"))["tasks"]
    planned = plan["workflow"]
    assert (view["id"], view["name"], view["labels"]) == (
        planned["id"],
        planned["name"],
        planned["labels"],
    )
    ran = {t["id"]: (t["action"], t["params"], t["depends_on"]) for t in tasks}
    assert ran == {t["id"]: (t["action"], t["params"], t["depends_on"]) for t in planned["tasks"]}


async def test_digests_are_stable_and_follow_input_and_state(
    registry: Registry, owner: Principal
) -> None:
    first = await _call(registry, owner, "server.create", **LAB, plan=True)
    again = await _call(registry, owner, "server.create", **LAB, plan=True)
    assert (first["digest"], first["state_digest"]) == (again["digest"], again["state_digest"])
    other = await _call(registry, owner, "server.create", **LAB, id="p-other", plan=True)
    assert other["digest"] != first["digest"]
    assert other["state_digest"] == first["state_digest"]

    await _call(registry, owner, "server.create", **LAB, wait=True)
    after = await _call(registry, owner, "server.create", **LAB, plan=True)
    assert after["state_digest"] != first["state_digest"]
    assert after["digest"] != first["digest"]
    # Planned on an existing server with the same labels: nothing to change.
    assert [(c["action"], c["name"]) for c in after["changes"]] == [("no-op", "lab-1")]


async def test_delete_and_taskserv_plans_read_the_inventory(
    registry: Registry, owner: Principal
) -> None:
    await _call(registry, owner, "server.create", config=LAB["config"], wait=True)
    gone = await _call(registry, owner, "server.delete", names=["lab-2"], plan=True)
    assert [(c["action"], c["kind"], c["name"]) for c in gone["changes"]] == [
        ("delete", "server", "lab-2")
    ]
    assert gone["changes"][0]["before"]["labels"] == {"env": "lab"}
    missing = await registry.invoke(
        "server.delete", {"names": ["ghost"], "plan": True}, principal=owner
    )
    assert missing.code == "not_found" and "ghost" in str(missing.error)

    drop = await _call(
        registry, owner, "taskserv.delete", server="lab-2", taskserv="kv-store", plan=True
    )
    assert [(c["action"], c["name"]) for c in drop["changes"]] == [("delete", "lab-2/kv-store")]
    add = await _call(
        registry, owner, "taskserv.create", server="lab-1", taskserv="kv-store", plan=True
    )
    assert [(c["action"], c["name"]) for c in add["changes"]] == [("create", "lab-1/kv-store")]
    same = await _call(
        registry, owner, "taskserv.create", server="lab-2", taskserv="kv-store", plan=True
    )
    assert [c["action"] for c in same["changes"]] == ["no-op"]


async def test_control_plans_name_the_workflow_and_its_state(
    registry: Registry, owner: Principal, settings: Settings
) -> None:
    spec = {
        "name": "p-wf",
        "tasks": [{"id": "a", "action": "noop", "compensate": {"action": "noop"}}],
    }
    planned = await _call(registry, owner, "workflow.submit", **spec, id="p-wf", plan=True)
    assert planned["targets"] == [{"kind": "workflow", "name": "p-wf", "labels": {}}]
    await _call(registry, owner, "workflow.submit", **spec, id="p-wf", wait=True)
    before = await _world(registry, owner, settings)
    rollback = await _call(registry, owner, "workflow.rollback", id="p-wf", plan=True)
    assert rollback["workflow"]["command"] == "rollback"
    assert [(t["id"], t["state"]) for t in rollback["workflow"]["tasks"]] == [("a", "succeeded")]
    retry = await _call(registry, owner, "workflow.retry", id="p-wf", plan=True)
    assert retry["state_digest"] == rollback["state_digest"]
    assert retry["digest"] != rollback["digest"]
    assert await _world(registry, owner, settings) == before


async def test_a_plan_is_refused_where_the_submission_would_be(
    registry: Registry, owner: Principal
) -> None:
    """A cycle, an unknown action, bad params: the orchestrator's own checks, no plan."""
    for tasks in (
        [
            {"id": "a", "action": "noop", "depends_on": ["b"]},
            {"id": "b", "action": "noop", "depends_on": ["a"]},
        ],
        [{"id": "a", "action": "teleport"}],
        [{"id": "a", "action": "shell", "params": {"nope": 1}}],
    ):
        spec = {"name": "p-bad", "tasks": tasks, "plan": True}
        refused = await registry.invoke("workflow.submit", spec, principal=owner)
        assert refused.code == "invalid_input", (tasks, refused)


async def test_a_plan_needs_the_permission_of_the_act(
    registry: Registry, keystore: KeyStore
) -> None:
    viewer = await keystore.authenticate(keystore.create("vic", ["viewer"]))
    refused = await registry.invoke("server.create", {**LAB, "plan": True}, principal=viewer)
    assert refused.code == "forbidden"


def _prvng(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [PRVNG, *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env=environ_snapshot(),
    )


@pytest.mark.usefixtures("settings")
def test_the_cli_prints_a_plan_like_terraform() -> None:
    done = _prvng("server", "create", "--config", "examples/lab.ncl", "--plan")
    assert done.returncode == 0, done.stderr
    assert "  + server lab-1 (env=lab)" in done.stdout
    assert "  + taskserv lab-2/kv-store" in done.stdout
    assert "Plan: 3 to add, 0 to change, 0 to destroy." in done.stdout
    assert "digest: sha256:" in done.stdout
    as_json = _prvng(
        "server", "create", "--config", "examples/lab.ncl", "--plan", "--output", "json"
    )
    assert as_json.returncode == 0, as_json.stderr
    assert json.loads(as_json.stdout)["kind"] == "plan"


async def test_the_audit_record_of_a_plan_says_plan(registry: Registry, owner: Principal) -> None:
    await _call(registry, owner, "server.create", **LAB, plan=True)
    await _call(registry, owner, "server.create", **LAB, id="p-audit", wait=True)
    env = await registry.invoke("audit.query", {"tool": "server.create"}, principal=owner)
    assert env.ok, env.error
    page: Any = env.data
    assert sorted(r["outcome"] for r in page["records"]) == ["ok", "plan"]


async def test_a_plan_keeps_secret_references_never_their_values(
    registry: Registry, owner: Principal
) -> None:
    await _call(registry, owner, "secret.set", name="db-password", value="hunter2-plan")
    env = {"DB_PASSWORD": {"secret": "db-password"}}
    task = {"id": "a", "action": "shell", "params": {"command": "true", "env": env}}
    plan = await _call(registry, owner, "workflow.submit", name="p-sec", tasks=[task], plan=True)
    assert plan["workflow"]["tasks"][0]["params"]["env"] == env
    assert "hunter2-plan" not in json.dumps(plan)
