"""MCP resources, templates, completions and subscriptions, over stdio and streamable
HTTP with a real client session: each read is its read tool's answer through the
pipeline, refusals are that tool's (and audited), completions offer only what the
caller may read, and a subscription hears a workflow change."""

from __future__ import annotations

import asyncio
import json
import warnings
from collections.abc import AsyncIterator, Callable
from typing import Any

import mcp_types
import pytest
from fastmcp import Client
from fastmcp.client.messages import MessageHandler
from fastmcp.client.transports import StreamableHttpTransport
from mcp.shared.exceptions import MCPError

from daemons.common.keystore import KeyStore
from daemons.common.settings import Settings
from registry import Principal, Registry
from servers.mcp import build_mcp
from servers.mcp.subscriptions import subscriptions_of
from servers.supervisor import serve
from tests.subprocesses import mcp_stdio
from tests.waiting import until

TEMPLATES = {
    "prvng://servers/{name}",
    "prvng://workflows/{id}",
    "prvng://workflows/{id}/tasks/{task}/logs",
    "prvng://config/{path*}",
    "prvng://audit/{event}",
    "prvng://docs/{tool}",
    "prvng://ops/{op_id}",
}
LISTS = {
    "prvng://servers": ("server.list", {"limit": 100}),
    "prvng://taskservs": ("taskserv.list", {}),
    "prvng://policies": ("policy.validate", {}),
}
Connect = Callable[..., Client]


@pytest.fixture
async def http(registry: Registry, settings: Settings) -> AsyncIterator[Connect]:
    """A client factory for any key, on `/mcp`."""
    async with serve(registry, settings) as url:
        yield lambda key, **kw: Client(StreamableHttpTransport(f"{url}/mcp/", auth=key), **kw)


def _data(result: Any) -> Any:
    assert not result.is_error, result.structured_content
    return result.structured_content


async def _read(client: Client, uri: str) -> Any:
    (content,) = await client.read_resource(uri)
    assert content.mime_type == "application/json"
    return json.loads(content.text)


async def _refusal(client: Client, uri: str) -> dict[str, Any]:
    with pytest.raises(MCPError) as refused:
        await client.read_resource(uri)
    data = refused.value.data
    assert set(data) == {"error", "trace_id"}
    return dict(data["error"])


def _shell(wf_id: str, command: str, **kw: Any) -> dict[str, Any]:
    task = {"id": "say", "action": "shell", "params": {"command": command}}
    return {"id": wf_id, "name": wf_id, "tasks": [task], "wait": True, **kw}


def _template(uri: str) -> mcp_types.ResourceTemplateReference:
    return mcp_types.ResourceTemplateReference(type="ref/resource", uri=uri)


def _prompt(name: str) -> mcp_types.PromptReference:
    return mcp_types.PromptReference(type="ref/prompt", name=name)


async def test_each_resource_is_its_read_tool(mcp_connect: Connect) -> None:
    async with mcp_connect() as client:
        _data(await client.call_tool("server.register", {"name": "web-1"}))
        _data(await client.call_tool("workflow.submit", _shell("wf-r1", "echo hello-resource")))
        assert {t.uri_template for t in await client.list_resource_templates()} == TEMPLATES
        listed = {str(r.uri) for r in await client.list_resources()}
        assert {*LISTS, "prvng://servers/web-1", "prvng://workflows/wf-r1"} <= listed
        for uri, (tool, args) in LISTS.items():
            assert await _read(client, uri) == _data(await client.call_tool(tool, args)), uri

        server = await client.call_tool("server.get", {"name": "web-1"})
        assert await _read(client, "prvng://servers/web-1") == _data(server)
        workflow = await client.call_tool("workflow.get", {"id": "wf-r1"})
        assert await _read(client, "prvng://workflows/wf-r1") == _data(workflow)
        logs = await _read(client, "prvng://workflows/wf-r1/tasks/say/logs")
        assert "hello-resource" in json.dumps(logs)
        direct = {"workflow_id": "wf-r1", "task_id": "say", "tail": 200}
        assert logs == _data(await client.call_tool("task.logs", direct))
        exported = await client.call_tool("config.export", {"path": "examples/lab.ncl"})
        assert await _read(client, "prvng://config/examples/lab.ncl") == _data(exported)["value"]

        doc = await _read(client, "prvng://docs/workflow.submit")
        full = next(
            t
            for t in _data(await client.call_tool("tools.list", {}))["tools"]
            if t["name"] == "workflow.submit"
        )
        assert {k: doc[k] for k in full} == full  # everything tools.list says, and errors
        codes = {e["code"] for e in doc["errors"]}
        assert {"invalid_input", "forbidden", "workflow_failed", "still_running"} <= codes

        query = {"tool": "server.register", "limit": 1}
        (record,) = _data(await client.call_tool("audit.query", query))["records"]
        assert await _read(client, f"prvng://audit/{record['event_id']}") == record

        missing = await _refusal(client, "prvng://servers/nope-1")
        direct_missing = await client.call_tool(
            "server.get", {"name": "nope-1"}, raise_on_error=False
        )
        assert missing == direct_missing.structured_content["error"]
        assert (await _refusal(client, "prvng://audit/no-such-event"))["code"] == "not_found"
        outside = await _refusal(client, "prvng://config/README.md")
        assert outside["code"] == "invalid_input"


async def test_refusals_are_the_pipelines_and_audited(
    http: Connect, admin_key: str, keystore: KeyStore
) -> None:
    viewer = keystore.create("vic", ["viewer"])
    async with http(admin_key) as admin:
        _data(await admin.call_tool("server.register", {"name": "web-2"}))
        _data(await admin.call_tool("workflow.submit", _shell("wf-secret", "echo s3cr3t")))
        (record,) = _data(await admin.call_tool("audit.query", {"limit": 1}))["records"]
    async with http(viewer) as client:
        assert (await _read(client, "prvng://servers/web-2"))["name"] == "web-2"
        logs = await _refusal(client, "prvng://workflows/wf-secret/tasks/say/logs")
        assert logs["code"] == "forbidden"
        audit = await _refusal(client, f"prvng://audit/{record['event_id']}")
        assert audit["code"] == "forbidden"
        listed = {str(r.uri) for r in await client.list_resources()}
        assert "prvng://servers/web-2" in listed
    async with http(admin_key) as admin:
        query = {"principal": "vic", "outcome": "forbidden"}
        refused = _data(await admin.call_tool("audit.query", query))["records"]
    assert {(r["tool"], r["tier"]) for r in refused} >= {
        ("task.logs", "mcp-http"),
        ("audit.query", "mcp-http"),
    }


async def test_completions_offer_what_the_caller_may_read(mcp_connect: Connect) -> None:
    async with mcp_connect() as client:
        _data(await client.call_tool("server.register", {"name": "web-1"}))
        _data(await client.call_tool("workflow.submit", _shell("wf-c1", "echo hi")))

        async def values(
            ref: Any, name: str, value: str, context: dict[str, str] | None = None
        ) -> list[str]:
            done = await client.complete(ref, {"name": name, "value": value}, context)
            return list(done.values)

        assert await values(_template("prvng://servers/{name}"), "name", "we") == ["web-1"]
        assert await values(_template("prvng://workflows/{id}"), "id", "wf-c") == ["wf-c1"]
        logs = _template("prvng://workflows/{id}/tasks/{task}/logs")
        assert await values(logs, "task", "", {"id": "wf-c1"}) == ["say"]
        assert await values(_template("prvng://config/{path*}"), "path", "examples/") == [
            "examples/invalid-port.ncl",
            "examples/lab.ncl",
        ]
        assert "server.get" in await values(_template("prvng://docs/{tool}"), "tool", "server.")
        assert await values(_prompt("plan-deployment"), "taskserv", "") == [
            "kv-store",
            "static-web",
        ]
        assert await values(_prompt("plan-deployment"), "server", "w") == ["web-1"]
        rules = await values(_prompt("harden-workspace"), "policy", "")
        assert {"prod-needs-approval", "dev"} <= set(rules)
        assert await values(_prompt("diagnose-workflow"), "workflow_id", "wf-c") == ["wf-c1"]
        events = await values(_template("prvng://audit/{event}"), "event", "")
        assert events
        assert await values(_template("prvng://nowhere/{x}"), "x", "") == []


async def test_completions_are_authorized(
    http: Connect, admin_key: str, keystore: KeyStore
) -> None:
    nobody = keystore.create("nobody", [])
    viewer = keystore.create("vic", ["viewer"])
    servers, events = _template("prvng://servers/{name}"), _template("prvng://audit/{event}")
    async with http(admin_key) as admin:
        _data(await admin.call_tool("server.register", {"name": "web-3"}))
        assert (await admin.complete(servers, {"name": "name", "value": ""})).values == ["web-3"]
        assert (await admin.complete(events, {"name": "event", "value": ""})).values
    async with http(viewer) as client:
        assert (await client.complete(servers, {"name": "name", "value": ""})).values == ["web-3"]
        assert (await client.complete(events, {"name": "event", "value": ""})).values == []
    async with http(nobody) as client:
        assert (await client.complete(servers, {"name": "name", "value": ""})).values == []


class _Updates(MessageHandler):
    def __init__(self) -> None:
        self.uris: list[str] = []
        self.arrived = asyncio.Event()

    async def on_resource_updated(self, message: mcp_types.ResourceUpdatedNotification) -> None:
        self.uris.append(str(message.params.uri))
        self.arrived.set()


async def _subscribe(client: Client, uri: str, *, unsubscribe: bool = False) -> None:
    """`resources/subscribe` belongs to the handshake era (what assistants speak today);
    the SDK marks it deprecated for the 2026 revision."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if unsubscribe:
            await client.session.unsubscribe_resource(uri)
        else:
            await client.session.subscribe_resource(uri)


def _slow(wf_id: str) -> dict[str, Any]:
    tasks = [{"id": "slow", "action": "sleep", "params": {"seconds": 120}}]
    return {"id": wf_id, "name": wf_id, "tasks": tasks}


async def test_a_subscription_hears_the_workflow_change(mcp_connect: Connect) -> None:
    updates = _Updates()
    async with mcp_connect(mode="legacy", message_handler=updates) as client:
        assert client.initialize_result is not None
        resources = client.initialize_result.capabilities.resources
        assert resources is not None and resources.subscribe
        assert _data(await client.call_tool("workflow.submit", _slow("wf-sub")))["state"] == (
            "running"
        )
        await _subscribe(client, "prvng://workflows/wf-sub")
        _data(await client.call_tool("workflow.cancel", {"id": "wf-sub"}))
        await asyncio.wait_for(updates.arrived.wait(), 30)
        assert set(updates.uris) == {"prvng://workflows/wf-sub"}
        assert (await _read(client, "prvng://workflows/wf-sub"))["state"] == "cancelled"
        with pytest.raises(MCPError, match="only prvng://workflows"):
            await _subscribe(client, "prvng://servers/web-1")
        with pytest.raises(MCPError) as missing:
            await _subscribe(client, "prvng://workflows/wf-none")
        assert missing.value.data["error"]["code"] == "not_found"


async def test_a_viewer_cannot_subscribe_to_what_it_may_not_read(
    http: Connect, admin_key: str, keystore: KeyStore
) -> None:
    viewer = keystore.create("vic", ["viewer"])
    async with http(admin_key) as admin:
        _data(await admin.call_tool("workflow.submit", _shell("wf-own", "echo mine")))
    async with http(viewer, mode="legacy") as client:
        with pytest.raises(MCPError) as refused:
            await _subscribe(client, "prvng://workflows/wf-own")
    assert refused.value.data["error"]["code"] == "forbidden"


async def test_unsubscribe_and_session_end_stop_the_stream(
    registry: Registry, owner: Principal
) -> None:
    server = build_mcp(registry, principal=owner)
    subscriptions = subscriptions_of(server)
    async with Client(server, mode="legacy") as client:
        _data(await client.call_tool("workflow.submit", _slow("wf-u1")))
        await _subscribe(client, "prvng://workflows/wf-u1")
        await _subscribe(client, "prvng://workflows/wf-u1")  # again: still one
        assert subscriptions.active == 1
        await _subscribe(client, "prvng://workflows/wf-u1", unsubscribe=True)
        assert subscriptions.active == 0
        await _subscribe(client, "prvng://workflows/wf-u1")
        assert subscriptions.active == 1
    await until(
        lambda: subscriptions.active == 0, what="the session's subscription to stop", within_s=30
    )
    await registry.invoke("workflow.cancel", {"id": "wf-u1"}, principal=owner)


async def test_stdio_relays_resources_to_a_running_platform(
    registry: Registry, settings: Settings, admin_key: str
) -> None:
    updates = _Updates()
    async with serve(registry, settings, write_run_file=True) as url:
        async with Client(StreamableHttpTransport(f"{url}/mcp/", auth=admin_key)) as admin:
            _data(await admin.call_tool("server.register", {"name": "relay-1"}))
        async with Client(mcp_stdio(), mode="legacy", message_handler=updates) as client:
            assert (await _read(client, "prvng://servers/relay-1"))["name"] == "relay-1"
            done = await client.complete(
                _template("prvng://servers/{name}"), {"name": "name", "value": "rel"}
            )
            assert list(done.values) == ["relay-1"]
            assert {p.name for p in await client.list_prompts()} >= {"harden-workspace"}
            _data(await client.call_tool("workflow.submit", _slow("wf-relay")))
            await _subscribe(client, "prvng://workflows/wf-relay")
            _data(await client.call_tool("workflow.cancel", {"id": "wf-relay"}))
            await asyncio.wait_for(updates.arrived.wait(), 30)
    assert set(updates.uris) == {"prvng://workflows/wf-relay"}
