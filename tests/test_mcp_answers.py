"""`settings.generate`'s missing answers asked in place (MCP elicitation): the form holds
only what is missing (the modes as an enum), the answers run through the pipeline and are
validated there, declining runs nothing, and a client without elicitation (or a caller
who may not call the tool) gets the `invalid_input` naming the missing fields."""

from __future__ import annotations

import shutil
from dataclasses import replace
from pathlib import Path
from typing import Any, Literal

import pytest
from fastmcp import Client
from fastmcp.client.elicitation import ElicitResult
from fastmcp.client.transports import StreamableHttpTransport

from daemons.common.keystore import KeyStore
from daemons.common.settings import PROJECT_ROOT, Settings
from registry import Principal, Registry
from servers.mcp import build_mcp
from servers.supervisor import serve

MODES = ["solo", "multiuser", "cicd", "enterprise"]


@pytest.fixture
def workspace(tmp_path: Path, registry: Registry, settings: Settings) -> Settings:
    """An empty workspace with the shipped schemas, as the registry's config dir."""
    ws = tmp_path / "ws"
    shutil.copytree(PROJECT_ROOT / "config" / "schemas", ws / "schemas")
    ws_settings = replace(settings, config_dir=ws)
    registry.resources.put(Settings, ws_settings)
    return ws_settings


class _User:
    """The person behind the client: fills each form with `answer`, noting its schema."""

    def __init__(self, answer: dict[str, Any] | Literal["decline", "cancel"]) -> None:
        self.answer = answer
        self.asked: list[tuple[str, dict[str, Any]]] = []

    async def __call__(self, message: str, response_type: Any, params: Any, ctx: Any) -> Any:
        self.asked.append((message, params.requested_schema))
        if isinstance(self.answer, str):
            return ElicitResult(action=self.answer)
        return self.answer


def _errors(result: Any) -> dict[str, Any]:
    assert result.is_error
    return dict(result.structured_content["error"])


@pytest.mark.usefixtures("workspace")
async def test_the_user_gives_the_missing_answers(registry: Registry, owner: Principal) -> None:
    user = _User({"mode": "cicd", "name": "acme"})
    server = build_mcp(registry, principal=owner)
    async with Client(server, mode="legacy", elicitation_handler=user) as client:
        made = await client.call_tool("settings.generate", {"servers": 2})
    ((question, schema),) = user.asked
    assert "mode, name" in question
    assert set(schema["properties"]) == {"mode", "name"}
    assert schema["properties"]["mode"]["enum"] == MODES
    assert set(schema["required"]) == {"mode", "name"}
    assert made.structured_content["mode"] == "cicd"
    servers = made.structured_content["value"]["servers"]
    assert [s["name"] for s in servers] == ["acme-data-1", "acme-data-2"]


@pytest.mark.usefixtures("workspace")
async def test_only_what_is_missing_is_asked(registry: Registry, owner: Principal) -> None:
    user = _User({"name": "solo-box"})
    server = build_mcp(registry, principal=owner)
    async with Client(server, mode="legacy", elicitation_handler=user) as client:
        made = await client.call_tool("settings.generate", {"mode": "solo"})
        given = await client.call_tool("settings.generate", {"mode": "solo", "name": "x1"})
    ((_, schema),) = user.asked  # the complete call was not asked about
    assert set(schema["properties"]) == {"name"}
    assert made.structured_content["value"]["name"] == "solo-box"
    assert given.structured_content["value"]["name"] == "x1"


@pytest.mark.usefixtures("workspace")
async def test_answers_are_validated_like_any_call(registry: Registry, owner: Principal) -> None:
    user = _User({"mode": "solo", "name": "Not A Name"})
    server = build_mcp(registry, principal=owner)
    async with Client(server, mode="legacy", elicitation_handler=user) as client:
        bad = await client.call_tool("settings.generate", {}, raise_on_error=False)
        wrong = await client.call_tool("settings.generate", {"mode": "huge"}, raise_on_error=False)
    assert len(user.asked) == 1  # a wrong answer given is refused, not asked about
    error = _errors(bad)
    assert error["code"] == "invalid_input"
    assert [e["loc"] for e in error["details"]["errors"]] == ["name"]
    assert _errors(wrong)["code"] == "invalid_input"


@pytest.mark.usefixtures("workspace")
async def test_declining_runs_nothing(registry: Registry, owner: Principal) -> None:
    server = build_mcp(registry, principal=owner)
    cases: list[tuple[Literal["decline", "cancel"], str]] = [
        ("decline", "declined"),
        ("cancel", "cancelled"),
    ]
    for action, said in cases:
        user = _User(action)
        async with Client(server, mode="legacy", elicitation_handler=user) as client:
            left = await client.call_tool("settings.generate", {}, raise_on_error=False)
        error = _errors(left)
        assert len(user.asked) == 1 and error["code"] == "invalid_input"
        assert f"the user {said} to give mode, name, so nothing ran" in error["message"]
        assert error["details"]["asked"] == action
        assert {e["loc"] for e in error["details"]["errors"]} == {"mode", "name"}


@pytest.mark.usefixtures("workspace")
async def test_a_client_without_elicitation_is_told_what_is_missing(
    registry: Registry, owner: Principal
) -> None:
    async with Client(build_mcp(registry, principal=owner), mode="legacy") as client:
        listed = {t.name: t for t in await client.list_tools()}
        refused = await client.call_tool("settings.generate", {}, raise_on_error=False)
    assert set(listed["settings.generate"].input_schema["required"]) == {"mode", "name"}
    error = _errors(refused)
    assert error["code"] == "invalid_input" and "asked" not in error["details"]
    assert {e["loc"] for e in error["details"]["errors"]} == {"mode", "name"}


async def test_over_http_the_user_is_asked_too(
    registry: Registry, workspace: Settings, keystore: KeyStore
) -> None:
    user = _User({"mode": "enterprise", "name": "bank"})
    async with serve(registry, workspace) as url:
        auth = keystore.create("vera", ["viewer"])
        async with Client(
            StreamableHttpTransport(f"{url}/mcp/", auth=auth),
            mode="legacy",
            elicitation_handler=user,
        ) as client:
            made = await client.call_tool("settings.generate", {})
            confirmed = await client.call_tool(
                "settings.generate", {}, meta={"prvng/confirmed": True}, raise_on_error=False
            )
    assert len(user.asked) == 1  # the confirmed call was not asked again
    assert made.structured_content["mode"] == "enterprise"
    assert {e["loc"] for e in _errors(confirmed)["details"]["errors"]} == {"mode", "name"}


async def test_a_caller_who_may_not_call_is_not_asked(
    registry: Registry, workspace: Settings, keystore: KeyStore
) -> None:
    user = _User({"mode": "solo", "name": "sneaky"})
    async with serve(registry, workspace) as url:
        bad = StreamableHttpTransport(f"{url}/mcp/", auth=keystore.create("nobody", []))
        async with Client(bad, mode="legacy", elicitation_handler=user) as client:
            refused = await client.call_tool("settings.generate", {}, raise_on_error=False)
    assert user.asked == []
    assert _errors(refused)["code"] in {"invalid_input", "forbidden"}
