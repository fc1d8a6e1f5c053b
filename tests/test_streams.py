"""Streams are registry operations: `/events`, `/v1/streams/…`, `GET /v1/events`, MCP and
the CLI all read `workflow.events` through the pipeline (authorized, rate-limited, audited)."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
from fastmcp import Client

from daemons.common.keystore import KeyStore
from daemons.common.settings import Settings
from registry import Principal, Registry
from servers.assembly import build_registry
from servers.mcp import build_mcp
from servers.supervisor import serve

PRVNG = str(Path(sys.executable).with_name("prvng"))
FOLLOW = (PRVNG, "workflow", "events", "--follow")


def _submit(wf_id: str) -> dict[str, Any]:
    tasks = [{"id": "a", "action": "noop"}, {"id": "b", "action": "noop", "depends_on": ["a"]}]
    return {"id": wf_id, "name": wf_id, "tasks": tasks, "wait": True}


def _audited(settings: Settings, tool: str) -> list[dict[str, Any]]:
    path = settings.logs_dir / "audit.jsonl"
    records = [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []
    return [r for r in records if r["tool"] == tool]


async def _sse_items(response: httpx.Response) -> list[dict[str, Any]]:
    items = []
    async for line in response.aiter_lines():
        if line.startswith("data: "):
            items.append(json.loads(line[6:]))
    return items


async def test_every_http_stream_path_runs_the_pipeline(
    registry: Registry, settings: Settings, admin_key: str
) -> None:
    auth = {"Authorization": f"Bearer {admin_key}"}
    async with serve(registry, settings) as url, httpx.AsyncClient(base_url=url, headers=auth) as c:
        done = (await c.post("/v1/tools/workflow.submit", json=_submit("st-1"))).json()
        assert done["data"]["state"] == "succeeded", done
        query = {"since": 0, "workflow_id": "st-1", "until_finished": "true"}
        async with c.stream("GET", "/v1/streams/workflow.events", params=query) as stream:
            assert stream.headers["content-type"].startswith("text/event-stream")
            items = await _sse_items(stream)  # ends by itself: until_finished
        assert [(i["task_id"], i["state"], i["final"]) for i in items if i["kind"] == "task"] == [
            ("a", "running", False),
            ("a", "succeeded", True),
            ("b", "running", False),
            ("b", "succeeded", True),
        ]
        assert items[-1]["kind"] == "workflow" and items[-1]["final"]

        sse = {"Accept": "text/event-stream"}
        async with c.stream("GET", "/v1/events", params=query, headers=sse) as alias:
            assert [i["seq"] for i in await _sse_items(alias)] == [i["seq"] for i in items]
        page = (await c.get("/v1/events", params={"since": 0, "workflow_id": "st-1"})).json()
        assert [e["seq"] for e in page["data"]["events"]] == [i["seq"] for i in items]
        assert page["data"]["last_seq"] == items[-1]["seq"]

        resumed = {**query, "since": None}
        del resumed["since"]
        last = str(items[1]["seq"])
        async with c.stream("GET", "/events", params=resumed, headers={"Last-Event-ID": last}) as s:
            assert [i["seq"] for i in await _sse_items(s)] == [i["seq"] for i in items[2:]]

        refused = await c.get("/v1/streams/workflow.events", params={"since": "yesterday"})
        assert refused.status_code == 422 and refused.json()["error"]["code"] == "invalid_input"
        not_a_stream = await c.get("/v1/streams/workflow.get", params={"id": "st-1"})
        assert not_a_stream.json()["error"]["code"] == "invalid_input"
    opened = [r for r in _audited(settings, "workflow.events") if r["outcome"] == "ok"]
    assert len(opened) == 3  # every stream opened is audited; the JSON page (a read) is not
    assert {r["principal"] for r in opened} == {(await registry.authenticate(admin_key)).id}


async def test_opening_streams_is_rate_limited(
    settings: Settings, keystore: KeyStore, admin_key: str
) -> None:
    limited = dataclasses.replace(settings, rate_limits="read=0.001/s:1")
    async with build_registry(limited, keystore=keystore) as registry:
        auth = {"Authorization": f"Bearer {admin_key}"}
        async with (
            serve(registry, limited) as url,
            httpx.AsyncClient(base_url=url, headers=auth) as c,
        ):
            first = await c.get("/v1/events", params={"since": 0})
            assert first.status_code == 200
            second = await c.get("/events", params={"since": 0})
            assert second.status_code == 429
            assert second.json()["error"]["code"] == "rate_limited"
    assert [r["outcome"] for r in _audited(limited, "workflow.events")] == ["rate_limited"]


async def test_mcp_reads_events_as_a_page_with_progress(
    registry: Registry, owner: Principal
) -> None:
    updates: list[str | None] = []

    async def on_progress(progress: float, total: float | None, message: str | None) -> None:
        updates.append(message)

    async with Client(build_mcp(registry, principal=owner)) as client:
        await client.call_tool("workflow.submit", _submit("mcp-ev"))
        result = await client.call_tool(
            "workflow.events", {"since": 0, "workflow_id": "mcp-ev"}, progress_handler=on_progress
        )
    assert result.structured_content is not None
    events = result.structured_content["events"]
    assert [e["state"] for e in events if e["kind"] == "workflow"][-1] == "succeeded"
    assert len(updates) == len(events) and updates[-1] == "workflow: succeeded"


async def test_cli_follows_a_stream_as_json_lines(
    registry: Registry, settings: Settings, owner: Principal
) -> None:
    await registry.invoke("workflow.submit", _submit("cli-ev"), principal=owner)
    await registry.invoke("workflow.submit", _submit("other"), principal=owner)
    async with serve(registry, settings, write_run_file=True):
        follow = await asyncio.to_thread(
            subprocess.run,
            [*FOLLOW, "--since", "0", "--until-finished", "--workflow-id", "cli-ev"],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        refused = await asyncio.to_thread(
            subprocess.run,
            [*FOLLOW, "--since", "-1"],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
    assert follow.returncode == 0, follow.stderr
    lines = [json.loads(line) for line in follow.stdout.splitlines()]
    assert lines[-1]["kind"] == "workflow" and lines[-1]["state"] == "succeeded"
    assert {line["workflow_id"] for line in lines} == {"cli-ev"}
    assert refused.returncode == 2 and "invalid_input" in refused.stderr
