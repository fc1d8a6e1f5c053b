"""A call that waits for a workflow fails when the workflow does: `workflow_failed` (HTTP 409,
exit 9, MCP isError) or `still_running` (202, exit 10) when the wait ran out, the workflow's
view in `details`, the same on every tier."""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastmcp import Client

from daemons.common.settings import Settings
from registry import Principal, Registry
from servers.mcp import build_mcp
from servers.supervisor import serve

PRVNG = str(Path(sys.executable).with_name("prvng"))
FAILING = {"id": "boom", "action": "shell", "params": {"command": "echo disk full >&2; exit 3"}}
SLOW = {"id": "nap", "action": "sleep", "params": {"seconds": 30}}


def _wf(wf_id: str, *tasks: dict[str, Any], **fields: Any) -> dict[str, Any]:
    return {"id": wf_id, "name": wf_id, "tasks": list(tasks), "wait": True, **fields}


@pytest.fixture
async def http(
    registry: Registry, settings: Settings, admin_key: str
) -> AsyncIterator[httpx.AsyncClient]:
    auth = {"Authorization": f"Bearer {admin_key}"}
    async with serve(registry, settings) as url, httpx.AsyncClient(base_url=url, headers=auth) as c:
        yield c


def _failure(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    body = response.json()
    assert response.status_code == status, body
    assert body["ok"] is False and body["error"]["code"] == code, body
    details: dict[str, Any] = body["error"]["details"]
    return details


async def test_http_a_failed_workflow_is_409_with_its_failed_tasks(http: httpx.AsyncClient) -> None:
    ok = {"id": "ok", "action": "noop", "compensate": {"action": "noop"}}
    body = _wf("wf-fail", ok, {**FAILING, "depends_on": ["ok"]})
    details = _failure(
        await http.post("/v1/tools/workflow.submit", json=body), 409, "workflow_failed"
    )
    assert details["id"] == "wf-fail" and details["state"] == "rolled_back"
    assert details["reason"]
    [failed] = details["failed_tasks"]
    assert failed["id"] == "boom" and failed["state"] == "failed"
    assert "exit" in failed["error"] and failed["attempts"] == 1
    # Without `wait` nothing was waited for: the call answers the submitted workflow.
    again = await http.post("/v1/tools/workflow.submit", json={**body, "wait": False})
    assert again.status_code == 200 and again.json()["data"]["state"] == "rolled_back"
    # Waiting again for the same finished workflow is the same failure.
    waited = await http.get("/workflows/wf-fail/wait")
    assert _failure(waited, 409, "workflow_failed")["failed_tasks"][0]["id"] == "boom"


async def test_http_a_wait_that_runs_out_is_202_still_running(http: httpx.AsyncClient) -> None:
    body = _wf("wf-slow", SLOW, wait_timeout_s=0.05)
    details = _failure(
        await http.post("/v1/tools/workflow.submit", json=body), 202, "still_running"
    )
    assert details["id"] == "wf-slow" and details["state"] in ("pending", "running")
    cancelled = await http.post("/v1/workflows/wf-slow/cancel", json={})
    assert cancelled.status_code == 200, cancelled.json()
    assert cancelled.json()["data"]["state"] == "cancelled"


async def test_control_commands_succeed_on_their_own_goal(http: httpx.AsyncClient) -> None:
    body = _wf("wf-stop", {**FAILING, "compensate": {"action": "noop"}}, on_failure="stop")
    failed = await http.post("/v1/tools/workflow.submit", json=body)
    assert _failure(failed, 409, "workflow_failed")["state"] == "failed"
    retried = await http.post("/v1/workflows/wf-stop/retry", json={})
    assert _failure(retried, 409, "workflow_failed")["failed_tasks"][0]["id"] == "boom"
    rolled = await http.post("/v1/workflows/wf-stop/rollback", json={})
    assert rolled.status_code == 200 and rolled.json()["data"]["state"] == "rolled_back"


async def test_deleting_an_unknown_server_is_not_found(http: httpx.AsyncClient) -> None:
    response = await http.post("/workflows/servers/delete", json={"names": ["ghost"]})
    assert _failure(response, 404, "not_found")["servers"] == ["ghost"]


async def test_mcp_a_failed_workflow_is_an_error_result(
    registry: Registry, owner: Principal
) -> None:
    async with Client(build_mcp(registry, principal=owner)) as client:
        result = await client.call_tool_mcp("workflow.submit", _wf("wf-mcp", FAILING))
    assert result.is_error
    error = (result.structured_content or {})["error"]
    assert error["code"] == "workflow_failed" and error["details"]["state"] == "rolled_back"


async def _prvng(*argv: str) -> tuple[int, str]:
    proc = await asyncio.create_subprocess_exec(
        PRVNG, *argv, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    out, err = await proc.communicate()
    assert proc.returncode is not None
    return proc.returncode, (out + err).decode()


async def test_cli_exits_9_for_a_failed_and_10_for_a_running_workflow(
    http: httpx.AsyncClient, admin_key: str, tmp_path: Path
) -> None:
    remote = ("--url", str(http.base_url).rstrip("/"), "--api-key", admin_key)
    spec = tmp_path / "fail.json"
    spec.write_text(json.dumps({"name": "f", "tasks": [FAILING]}))
    code, out = await _prvng("workflow", "submit", "--json", f"@{spec}", "--wait", *remote)
    assert code == 9, out
    assert "error[workflow_failed]" in out and "boom" in out
    slow = tmp_path / "slow.json"
    slow.write_text(json.dumps({"id": "cli-slow", "name": "s", "tasks": [SLOW]}))
    argv = ("workflow", "submit", "--json", f"@{slow}", "--wait", "--wait-timeout-s", "0.05")
    code, out = await _prvng(*argv, *remote)
    assert code == 10, out
    assert "error[still_running]" in out
    code, out = await _prvng("server", "delete", "--names", "ghost", *remote)
    assert code == 3, out
    code, out = await _prvng("workflow", "cancel", "--id", "cli-slow", *remote)
    assert code == 0, out
    code, out = await _prvng("--help")
    assert "9  workflow_failed" in out and "10  still_running" in out
