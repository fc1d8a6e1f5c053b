"""What the published schema refuses, the platform refuses: JSON types exactly as published,
no duplicate keys, no nesting past the limit, no bad bytes: `invalid_input` on every tier."""

from __future__ import annotations

import dataclasses
import logging
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from daemons.common.settings import Settings
from registry import Principal, Registry
from registry.pipeline import MAX_INPUT_DEPTH
from servers.jsontext import MAX_DEPTH
from servers.supervisor import serve

PRVNG = str(Path(sys.executable).with_name("prvng"))
JSON = {"Content-Type": "application/json"}


def nested(depth: int) -> Any:
    """`depth` arrays inside each other (`[[[]]]` is 3)."""
    value: Any = []
    for _ in range(depth - 1):
        value = [value]
    return value


def _noop_workflow(wf_id: str, params: dict[str, Any] | None = None) -> dict[str, Any]:
    task = {"id": "a", "action": "noop", "params": params or {}}
    return {"id": wf_id, "name": wf_id, "tasks": [task], "wait": True}


@pytest.mark.parametrize(
    ("tool", "args", "loc"),
    [
        ("workflow.submit", {**_noop_workflow("s-0"), "wait": 0}, "wait"),
        ("server.list", {"offset": False}, "offset"),
        ("server.list", {"limit": "5"}, "limit"),
        ("server.list", {"limit": 5.5}, "limit"),
        ("server.list", {"labels": {"Not A Key": "x"}}, "labels.Not A Key.[key]"),
        ("server.register", {"name": 7}, "name"),
        ("workflow.list", {"state": 1}, "state"),
    ],
)
async def test_json_types_are_checked_as_published(
    registry: Registry, owner: Principal, tool: str, args: dict[str, Any], loc: str
) -> None:
    envelope = await registry.invoke(tool, args, principal=owner)
    assert envelope.code == "invalid_input", envelope.data
    assert envelope.error is not None
    assert [e["loc"] for e in envelope.error["details"]["errors"]] == [loc]


async def test_what_the_schema_admits_still_passes(registry: Registry, owner: Principal) -> None:
    listed = await registry.invoke("workflow.list", {"state": "running"}, principal=owner)
    assert listed.ok, listed.error
    args = {"limit": 5.0}  # JSON Schema's integer: any number without a fraction
    page = await registry.invoke("workflow.list", args, principal=owner)
    assert page.ok and args == {"limit": 5.0}, page.error
    submitted = await registry.invoke(
        "workflow.submit", {**_noop_workflow("s-1"), "wait_timeout_s": 5}, principal=owner
    )
    assert submitted.ok and submitted.data["state"] == "succeeded", submitted.error


def _posting(wf_id: str, body: Any) -> dict[str, Any]:
    """A workflow whose one task POSTs `body` (nowhere: it is never waited for)."""
    params = {"method": "POST", "url": "http://127.0.0.1:9/", "json": body}
    task = {"id": "a", "action": "http", "params": params}
    return {"id": wf_id, "name": wf_id, "tasks": [task]}


async def test_nesting_past_the_limit_is_refused(registry: Registry, owner: Principal) -> None:
    assert MAX_DEPTH == MAX_INPUT_DEPTH  # the wire's parser and the pipeline agree
    # The input object is depth 1, `tasks` 2, a task 3, its params 4, and `json` the rest.
    fits = _posting("s-fit", nested(MAX_INPUT_DEPTH - 4))
    assert (await registry.invoke("workflow.submit", fits, principal=owner)).ok
    deep = _posting("s-deep", nested(MAX_INPUT_DEPTH - 3))
    refused = await registry.invoke("workflow.submit", deep, principal=owner)
    assert refused.code == "invalid_input" and refused.error is not None
    assert refused.error["details"]["max_depth"] == MAX_INPUT_DEPTH


@pytest.fixture
async def client(
    registry: Registry, settings: Settings, admin_key: str
) -> AsyncIterator[httpx.AsyncClient]:
    big = dataclasses.replace(settings, max_body_bytes=4 * 1024 * 1024)
    auth = {"Authorization": f"Bearer {admin_key}"}
    async with serve(registry, big) as url, httpx.AsyncClient(base_url=url, headers=auth) as c:
        yield c


def _invalid(response: httpx.Response) -> dict[str, Any]:
    assert response.status_code == 422, response.text
    body = response.json()
    assert body["error"]["code"] == "invalid_input", body
    error: dict[str, Any] = body["error"]
    return error


async def test_http_bodies_are_parsed_strictly(
    client: httpx.AsyncClient, caplog: pytest.LogCaptureFixture
) -> None:
    url = "/v1/tools/server.register"
    twice = _invalid(
        await client.post(url, content=b'{"name": "a-1", "name": "b-1"}', headers=JSON)
    )
    assert twice["details"]["key"] == "name" and "twice" in twice["message"]
    inner = b'{"name": "a-2", "labels": {"env": "dev", "env": "prod"}}'
    assert _invalid(await client.post(url, content=inner, headers=JSON))["details"]["key"] == "env"
    _invalid(await client.post(url, content=b'{"name": "a-3", "address": NaN}', headers=JSON))
    utf16 = '{"name": "a-4"}'.encode("utf-16")
    assert "UTF-8" in _invalid(await client.post(url, content=utf16, headers=JSON))["message"]
    latin = b'{"name": "a-5", "address": "caf\xe9"}'
    assert "UTF-8" in _invalid(await client.post(url, content=latin, headers=JSON))["message"]
    lone = b'{"name": "a-6", "address": "\\ud800"}'
    assert "surrogate" in _invalid(await client.post(url, content=lone, headers=JSON))["message"]
    with caplog.at_level(logging.ERROR):
        for depth in (MAX_DEPTH + 1, 100_000):
            body = b'{"name": "a-7", "labels": ' + b"[" * depth + b"]" * depth + b"}"
            error = _invalid(await client.post(url, content=body, headers=JSON))
            assert error["details"]["max_depth"] == MAX_DEPTH
    assert [r for r in caplog.records if r.levelno >= logging.ERROR] == []
    assert (await client.get("/v1/servers")).json()["data"]["total"] == 0  # nothing got in


def _prvng(*args: str, stdin: bytes | None = None) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run([PRVNG, *args], input=stdin, capture_output=True, timeout=60, check=False)


def test_cli_json_is_parsed_strictly(tmp_path: Path) -> None:
    twice = _prvng("call", "server.register", "--json", '{"name": "a-1", "name": "b-1"}')
    assert twice.returncode == 2, twice.stderr
    assert b"error[invalid_input]" in twice.stderr and b"'name' appears twice" in twice.stderr
    bad_bytes = tmp_path / "latin1.json"
    bad_bytes.write_bytes(b'{"name": "caf\xe9"}')
    done = _prvng("server", "register", "--json", f"@{bad_bytes}", "--output", "json")
    assert done.returncode == 2, done.stderr
    assert b"Traceback" not in done.stderr and b'"code":"invalid_input"' in done.stderr
    piped = _prvng("server", "register", "--json", "-", stdin=b'{"name": "caf\xe9"}')
    assert piped.returncode == 2 and b"UTF-8" in piped.stderr, piped.stderr
    deep = "[" * 50_000 + "]" * 50_000  # one argv string holds at most 128 KiB
    done = _prvng("call", "server.register", "--json", f'{{"name": "a-1", "labels": {deep}}}')
    assert done.returncode == 2 and b"Traceback" not in done.stderr, done.stderr[-500:]


async def test_query_objects_are_documented_as_the_json_they_take(
    client: httpx.AsyncClient,
) -> None:
    """Found by the fuzzer: an object query parameter was documented in OpenAPI's exploded
    form (`env=dev`), which the tier reads as an unknown parameter."""
    doc = (await client.get("/openapi.json")).json()
    params = {p["name"]: p for p in doc["paths"]["/v1/servers"]["get"]["parameters"]}
    assert "application/json" in params["labels"]["content"] and "schema" not in params["labels"]
    listed = await client.get("/v1/servers", params={"labels": '{"env": "dev"}', "limit": "5"})
    assert listed.status_code == 200, listed.text
