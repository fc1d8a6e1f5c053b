"""Approvals asked in place (MCP elicitation) with a real ops plane: the user sees the op
and its plan, the answer runs through the pipeline (roles and four-eyes still hold),
declining decides nothing, and a client without elicitation is served as before."""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from fastmcp import Client
from fastmcp.client.elicitation import ElicitResult
from fastmcp.client.transports import StreamableHttpTransport

from daemons.common.keystore import KeyStore
from daemons.common.settings import PROJECT_ROOT, Settings
from registry import Registry
from servers.assembly import build_registry
from servers.mcp import build_mcp
from servers.supervisor import serve


@pytest.fixture
def prod_workspace(tmp_path: Path, settings: Settings) -> Settings:
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


@pytest.fixture
async def plane(prod_workspace: Settings, keystore: KeyStore) -> AsyncIterator[Registry]:
    async with build_registry(prod_workspace, keystore=keystore) as registry:
        yield registry


class _User:
    """The person behind the client: answers each question with `answer`."""

    def __init__(self, answer: dict[str, Any] | str) -> None:
        self.answer = answer
        self.asked: list[str] = []

    async def __call__(self, message: str, response_type: Any, params: Any, ctx: Any) -> Any:
        self.asked.append(message)
        if isinstance(self.answer, str):
            return ElicitResult(action=self.answer)
        return self.answer


async def _pending(plane: Registry, keystore: KeyStore) -> str:
    ada = await plane.authenticate(keystore.create("ada", ["admin"]))
    asked = await plane.invoke("server.create", {"names": ["prod-1"]}, principal=ada)
    assert asked.error is not None and asked.error["code"] == "approval_required"
    return str(asked.error["details"]["op_id"])


async def _as(plane: Registry, keystore: KeyStore, name: str, role: str) -> Any:
    return await plane.authenticate(keystore.create(name, [role]))


async def test_the_user_approves_in_place(plane: Registry, keystore: KeyStore) -> None:
    op_id = await _pending(plane, keystore)
    apu = await _as(plane, keystore, "apu", "approver")
    user = _User({"decision": "approve"})
    server = build_mcp(plane, principal=apu)
    async with Client(server, mode="legacy", elicitation_handler=user) as client:
        result = await client.call_tool("ops.approve", {"op_id": op_id})
    (question,) = user.asked
    assert op_id in question and "server.create on prod-1" in question
    assert "env=prod" in question and "create prod-1" in question
    assert result.structured_content["status"] == "published"
    assert result.structured_content["approvers"] == ["apu"]


async def test_the_user_may_reject_or_decide_nothing(plane: Registry, keystore: KeyStore) -> None:
    op_id = await _pending(plane, keystore)
    apu = await _as(plane, keystore, "apu", "approver")
    server = build_mcp(plane, principal=apu)
    for answer in ("decline", "cancel"):
        async with Client(server, mode="legacy", elicitation_handler=_User(answer)) as client:
            left = await client.call_tool("ops.approve", {"op_id": op_id})
        assert not left.is_error and left.structured_content["status"] == "pending"
    user = _User({"decision": "reject", "reason": "not this week"})
    async with Client(server, mode="legacy", elicitation_handler=user) as client:
        rejected = await client.call_tool("ops.approve", {"op_id": op_id})
    assert rejected.structured_content["status"] == "rejected"
    op = await plane.invoke("ops.get", {"op_id": op_id}, principal=apu)
    assert op.data is not None and op.data["reason"] == "not this week"


async def test_the_pipeline_still_decides_who_may_approve(
    plane: Registry, keystore: KeyStore
) -> None:
    op_id = await _pending(plane, keystore)
    olga = await _as(plane, keystore, "olga", "operator")
    requester = await plane.authenticate(keystore.create("ada", ["admin"]))
    approve = _User({"decision": "approve"})
    async with Client(
        build_mcp(plane, principal=requester), mode="legacy", elicitation_handler=approve
    ) as client:
        own = await client.call_tool("ops.approve", {"op_id": op_id}, raise_on_error=False)
    assert own.is_error and "four-eyes" in own.structured_content["error"]["message"]
    async with Client(
        build_mcp(plane, principal=olga), mode="legacy", elicitation_handler=approve
    ) as client:
        denied = await client.call_tool("ops.approve", {"op_id": op_id}, raise_on_error=False)
    assert denied.structured_content["error"]["code"] == "forbidden"


async def test_a_client_without_elicitation_approves_as_before(
    plane: Registry, keystore: KeyStore
) -> None:
    op_id = await _pending(plane, keystore)
    apu = await _as(plane, keystore, "apu", "approver")
    async with Client(build_mcp(plane, principal=apu), mode="legacy") as client:
        approved = await client.call_tool("ops.approve", {"op_id": op_id})
    assert approved.structured_content["status"] == "published"


async def test_a_confirmed_call_over_http_is_not_asked_again(
    plane: Registry, prod_workspace: Settings, keystore: KeyStore
) -> None:
    op_id = await _pending(plane, keystore)
    user = _User({"decision": "reject"})
    transport = StreamableHttpTransport
    async with serve(plane, prod_workspace) as url:
        auth = keystore.create("apu", ["approver"])
        async with Client(
            transport(f"{url}/mcp/", auth=auth), mode="legacy", elicitation_handler=user
        ) as client:
            confirmed = await client.call_tool(
                "ops.approve", {"op_id": op_id}, meta={"prvng/confirmed": True}
            )
    assert user.asked == []
    assert confirmed.structured_content["status"] == "published"


async def test_over_http_the_user_is_asked_too(
    plane: Registry, prod_workspace: Settings, keystore: KeyStore
) -> None:
    op_id = await _pending(plane, keystore)
    user = _User({"decision": "reject", "reason": "asked over http"})
    async with serve(plane, prod_workspace) as url:
        auth = keystore.create("apu", ["approver"])
        async with Client(
            StreamableHttpTransport(f"{url}/mcp/", auth=auth),
            mode="legacy",
            elicitation_handler=user,
        ) as client:
            rejected = await client.call_tool("ops.reject", {"op_id": op_id})
    assert len(user.asked) == 1 and op_id in user.asked[0]
    assert rejected.structured_content["status"] == "rejected"
