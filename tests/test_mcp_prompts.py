"""MCP prompts over stdio and streamable HTTP: each is filled with the platform's real
state, read through the pipeline as its user (embedded as `prvng://` resources), and a
read its user may not make fails the prompt with the pipeline's refusal."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from fastmcp import Client
from fastmcp.client.transports import StreamableHttpTransport
from mcp.shared.exceptions import MCPError

from daemons.common.keystore import KeyStore
from daemons.common.settings import PROJECT_ROOT, Settings
from registry import Registry
from servers.assembly import build_registry
from servers.supervisor import serve

PROMPTS = {"plan-deployment", "review-plan", "diagnose-workflow", "harden-workspace"}
Connect = Callable[..., Client]


def _data(result: Any) -> Any:
    assert not result.is_error, result.structured_content
    return result.structured_content


def _split(messages: list[Any]) -> tuple[str, dict[str, Any]]:
    """The prompt's text, and its embedded resources by URI (as JSON)."""
    text = " ".join(m.content.text for m in messages if m.content.type == "text")
    embedded = {
        str(m.content.resource.uri): json.loads(m.content.resource.text)
        for m in messages
        if m.content.type == "resource"
    }
    return text, embedded


async def test_prompts_are_listed_with_their_arguments(mcp_connect: Connect) -> None:
    async with mcp_connect() as client:
        listed = {p.name: p for p in await client.list_prompts()}
    assert set(listed) == PROMPTS
    args = {name: {a.name: a.required for a in p.arguments or []} for name, p in listed.items()}
    assert args["diagnose-workflow"] == {"workflow_id": True}
    assert args["review-plan"] == {"op_id": True}
    assert args["plan-deployment"]["description"] is True
    assert args["harden-workspace"] == {"path": False, "policy": False}


async def test_diagnose_embeds_the_failed_tasks_error_and_logs(mcp_connect: Connect) -> None:
    task = {"id": "boom", "action": "shell", "params": {"command": "echo disk-full >&2; exit 3"}}
    spec = {"id": "wf-d1", "name": "wf-d1", "tasks": [task], "wait": True, "on_failure": "stop"}
    async with mcp_connect() as client:
        failed = await client.call_tool("workflow.submit", spec, raise_on_error=False)
        assert failed.is_error and failed.structured_content["error"]["code"] == "workflow_failed"
        prompt = await client.get_prompt("diagnose-workflow", {"workflow_id": "wf-d1"})
        direct_task = _data(
            await client.call_tool("task.get", {"workflow_id": "wf-d1", "task_id": "boom"})
        )
        with pytest.raises(MCPError) as missing:
            await client.get_prompt("diagnose-workflow", {"workflow_id": "wf-none"})
    text, embedded = _split(prompt.messages)
    assert direct_task["error"] and direct_task["error"] in text
    logs = embedded["prvng://workflows/wf-d1/tasks/boom/logs"]
    assert "disk-full" in json.dumps(logs)
    assert embedded["prvng://workflows/wf-d1/tasks/boom"]["error"] == direct_task["error"]
    assert embedded["prvng://workflows/wf-d1"]["state"] == "failed"
    assert missing.value.data["error"]["code"] == "not_found"


async def test_plan_and_harden_embed_the_workspace(mcp_connect: Connect) -> None:
    async with mcp_connect() as client:
        _data(await client.call_tool("server.register", {"name": "web-1"}))
        plan = await client.get_prompt(
            "plan-deployment",
            {"description": "a kv store for the lab", "taskserv": "kv-store", "server": "web-1"},
        )
        servers = _data(await client.call_tool("server.list", {"limit": 100}))
        workspace = _data(await client.call_tool("config.export", {"path": "workspace.ncl"}))
        harden = await client.get_prompt("harden-workspace", {"policy": "prod-needs-approval"})
        with pytest.raises(MCPError) as unknown:
            await client.get_prompt("harden-workspace", {"policy": "no-such-rule"})
    text, embedded = _split(plan.messages)
    assert "a kv store for the lab" in text and "kv-store" in text and "web-1" in text
    assert embedded["prvng://servers"] == servers
    assert embedded["prvng://config/workspace.ncl"] == workspace["value"]
    names = [t["name"] for t in embedded["prvng://taskservs"]["available"]]
    assert "kv-store" in names
    text, embedded = _split(harden.messages)
    assert "'prod-needs-approval'" in text
    rules = [r["name"] for r in embedded["prvng://config/keeper_policy.ncl"]["rules"]]
    assert "prod-needs-approval" in rules
    assert embedded["prvng://policies"]["valid"] is True
    assert unknown.value.data["error"]["code"] == "not_found"


async def test_a_prompt_reads_only_what_its_user_may(
    registry: Registry, settings: Settings, admin_key: str, keystore: KeyStore
) -> None:
    viewer = keystore.create("vic", ["viewer"])
    task = {"id": "boom", "action": "shell", "params": {"command": "exit 4"}}
    spec = {"id": "wf-d2", "name": "wf-d2", "tasks": [task], "wait": True, "on_failure": "stop"}
    async with serve(registry, settings) as url:
        async with Client(StreamableHttpTransport(f"{url}/mcp/", auth=admin_key)) as admin:
            await admin.call_tool("workflow.submit", spec, raise_on_error=False)
        async with Client(StreamableHttpTransport(f"{url}/mcp/", auth=viewer)) as client:
            with pytest.raises(MCPError) as refused:
                await client.get_prompt("diagnose-workflow", {"workflow_id": "wf-d2"})
    assert refused.value.data["error"]["code"] == "forbidden"


@pytest.fixture
def prod_workspace(tmp_path: Path, settings: Settings) -> Settings:
    """Settings on a workspace with one env=prod server (its creation needs an approval)."""
    ws = tmp_path / "ws"
    (ws / "schemas").mkdir(parents=True)
    schema = (PROJECT_ROOT / "config" / "schemas" / "server.ncl").read_text()
    (ws / "schemas" / "server.ncl").write_text(schema)
    (ws / "workspace.ncl").write_text(
        'let s = import "schemas/server.ncl" in\n'
        '{ name = "ops", servers = [{ name = "prod-1", labels = { env = "prod" } }] }'
        " | s.Workspace\n"
    )
    return dataclasses.replace(settings, config_dir=ws)


async def test_review_shows_the_pending_op_and_its_changes(
    prod_workspace: Settings, keystore: KeyStore, admin_key: str
) -> None:
    async with (
        build_registry(prod_workspace, keystore=keystore) as plane,
        serve(plane, prod_workspace) as url,
        Client(StreamableHttpTransport(f"{url}/mcp/", auth=admin_key)) as client,
    ):
        asked = await client.call_tool("server.create", {"names": ["prod-1"]}, raise_on_error=False)
        error = asked.structured_content["error"]
        assert error["code"] == "approval_required"
        op_id = error["details"]["op_id"]
        op = _data(await client.call_tool("ops.get", {"op_id": op_id}))
        prompt = await client.get_prompt("review-plan", {"op_id": op_id})
        completed = await client.complete(
            {"type": "ref/prompt", "name": "review-plan"}, {"name": "op_id", "value": "op-"}
        )
    text, embedded = _split(prompt.messages)
    assert op_id in text and "server.create" in text and "prod-needs-approval" in text
    assert embedded[f"prvng://ops/{op_id}"] == op
    assert [(c["action"], c["name"]) for c in op["changes"]] == [("create", "prod-1")]
    assert list(completed.values) == [op_id]
