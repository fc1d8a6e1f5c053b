"""The HTTP tier over a real socket: auth, envelopes, REST aliases, robustness, trace ids."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import jsonschema
import pytest
from pydantic import Field

from daemons.common.health import ComponentStatus, HealthBoard
from daemons.common.keystore import KeyStore
from daemons.common.settings import Settings
from registry import (
    JsonlAuditSink,
    Registry,
    RestAlias,
    Risk,
    StrictModel,
    ToolContext,
    ToolSpec,
    listing_output_schema,
)
from servers.http import create_app
from servers.http.input import query_args
from servers.supervisor import serve
from tools.meta import TOOLS as CATALOG


@pytest.fixture
async def client(
    registry: Registry, settings: Settings, admin_key: str
) -> AsyncIterator[httpx.AsyncClient]:
    small = dataclasses.replace(settings, max_body_bytes=1024)
    async with (
        serve(registry, small) as url,
        httpx.AsyncClient(base_url=url, headers={"Authorization": f"Bearer {admin_key}"}) as c,
    ):
        yield c


def _error(response: httpx.Response, status: int, code: str) -> dict[str, object]:
    assert response.status_code == status, response.text
    body = response.json()
    assert body["ok"] is False and body["error"]["code"] == code, body
    assert response.headers["x-trace-id"] == body["trace_id"]
    return dict(body["error"])


async def test_bearer_key_is_required_except_on_open_paths(
    client: httpx.AsyncClient, keystore: KeyStore, registry: Registry
) -> None:
    async with httpx.AsyncClient(base_url=str(client.base_url)) as anonymous:
        for path in ("/v1/tools", "/nowhere"):
            response = await anonymous.get(path)
            assert "Authorization" in str(_error(response, 401, "unauthenticated")["message"])
            assert response.headers["www-authenticate"] == "Bearer"
        _error(await anonymous.post("/mcp/", json={}), 401, "unauthenticated")
        assert (await anonymous.get("/health")).status_code == 200
        assert (await anonymous.get("/openapi.json")).json()["openapi"] == "3.1.0"
    for wrong in ("Bearer prvng_000000000000_nope", "Basic YWRtaW46YWRtaW4="):
        response = await client.get("/v1/tools", headers={"Authorization": wrong})
        _error(response, 401, "unauthenticated")
    viewer = keystore.create("vic", ["viewer"])
    as_viewer = {"Authorization": f"Bearer {viewer}"}
    assert (await client.get("/v1/tools", headers=as_viewer)).status_code == 200
    denied = await client.post("/v1/tools/server.register", json={"name": "v-1"}, headers=as_viewer)
    assert "server:write" in str(_error(denied, 403, "forbidden")["message"])
    refusals = [(r["tool"], r["outcome"]) for r in registry.audit_sink.sinks[0].read()]  # type: ignore[attr-defined]  # the fan-out's JSONL tail
    assert ("GET /v1/tools", "unauthenticated") in refusals
    assert ("POST /mcp/", "unauthenticated") in refusals
    assert ("server.register", "forbidden") in refusals


async def test_listing_is_the_tools_list_envelope(
    client: httpx.AsyncClient, registry: Registry
) -> None:
    response = await client.get("/v1/tools")
    assert response.status_code == 200
    body = response.json()
    assert body["ok"] is True and response.headers["x-trace-id"] == body["trace_id"]
    jsonschema.validate(body["data"], listing_output_schema())
    assert body["data"] == registry.listing().model_dump(mode="json")
    platform = (await client.get("/v1/tools", params={"group": "platform"})).json()["data"]
    assert {t["name"] for t in platform["tools"]} == {"platform.health", "platform.info"}
    _error(await client.get("/v1/tools", params={"grup": "x"}), 422, "invalid_input")


async def test_post_a_tool_and_its_errors(client: httpx.AsyncClient) -> None:
    created = await client.post("/v1/tools/server.register", json={"name": "web-1"})
    assert created.status_code == 200
    assert created.json()["data"]["name"] == "web-1"
    _error(await client.post("/v1/tools/server.register", json={"name": "web-1"}), 409, "conflict")
    bad = _error(
        await client.post("/v1/tools/server.register", json={"name": "Bad Name"}),
        422,
        "invalid_input",
    )
    assert "name" in str(bad["message"])
    missing = _error(await client.post("/v1/tools/server.nope", json={}), 404, "not_found")
    assert "server.nope" in str(missing["message"])
    # An empty POST is `{}`: tools without input need no body.
    assert (await client.post("/v1/tools/platform.info")).json()["ok"] is True


async def test_rest_aliases_coerce_query_and_path(client: httpx.AsyncClient) -> None:
    for name, env in (("a-1", "dev"), ("a-2", "dev"), ("a-3", "prod")):
        response = await client.post("/v1/servers", json={"name": name, "labels": {"env": env}})
        assert response.status_code == 200, response.text
    page = (await client.get("/v1/servers?limit=1&labels.env=dev")).json()["data"]
    assert page["total"] == 2 and [s["name"] for s in page["servers"]] == ["a-1"]
    as_json = await client.get("/v1/servers", params={"labels": '{"env": "prod"}'})
    assert [s["name"] for s in as_json.json()["data"]["servers"]] == ["a-3"]
    bad = _error(await client.get("/v1/servers?limit=lots"), 422, "invalid_input")
    assert "limit" in str(bad["message"])
    assert (await client.get("/v1/servers/a-2")).json()["data"]["labels"] == {"env": "dev"}
    removed = await client.delete("/v1/servers/a-2")
    assert removed.json()["data"] == {"name": "a-2", "removed": True}
    _error(await client.get("/v1/servers/a-2"), 404, "not_found")
    _error(await client.delete("/v1/servers/a-2"), 404, "not_found")


async def test_bad_requests_are_envelopes(client: httpx.AsyncClient) -> None:
    json_headers = {"Content-Type": "application/json"}
    url = "/v1/tools/server.register"
    malformed = _error(
        await client.post(url, content=b'{"name": "x",}', headers=json_headers),
        422,
        "invalid_input",
    )
    assert "line 1 column 14" in str(malformed["message"])
    not_object = _error(
        await client.post(url, content=b"[1]", headers=json_headers), 422, "invalid_input"
    )
    assert "not an array" in str(not_object["message"])
    wrong_type = await client.post(url, content=b"name=x", headers={"Content-Type": "text/plain"})
    _error(wrong_type, 415, "unsupported_media_type")
    big = json.dumps({"name": "x", "address": "a" * 2000}).encode()
    _error(await client.post(url, content=big, headers=json_headers), 413, "payload_too_large")

    async def chunks() -> AsyncIterator[bytes]:
        for _ in range(8):
            yield b" " * 512  # no Content-Length: only the running count can catch it

    streamed = await client.post(url, content=chunks(), headers=json_headers)
    _error(streamed, 413, "payload_too_large")
    _error(await client.get("/no/such/route"), 404, "not_found")
    wrong_method = _error(await client.put("/v1/servers/a-1"), 405, "method_not_allowed")
    assert set(wrong_method["details"]["allow"]) >= {"GET", "DELETE"}  # type: ignore[index]
    _error(await client.get(url), 405, "method_not_allowed")


async def test_trace_ids_come_from_the_caller(client: httpx.AsyncClient) -> None:
    trace = "4bf92f3577b34da6a3ce929d0e0e4736"
    parent = f"00-{trace}-00f067aa0ba902b7-01"
    by_parent = await client.post("/v1/tools/platform.info", headers={"traceparent": parent})
    assert by_parent.headers["x-trace-id"] == trace == by_parent.json()["trace_id"]
    by_header = await client.get("/v1/servers/none-1", headers={"X-Trace-Id": "req-12345678"})
    assert by_header.headers["x-trace-id"] == "req-12345678" == by_header.json()["trace_id"]
    fresh = await client.post("/v1/tools/platform.info", headers={"X-Trace-Id": "bad id!"})
    assert len(fresh.headers["x-trace-id"]) == 32


# -- a registry of demo tools: approval, crashes, typed query parameters ----------------


class ProbeIn(StrictModel):
    item: int
    tags: list[str] = Field(default_factory=list)
    ratio: float = 1.0
    flag: bool = False
    note: str | None = None


class ProbeOut(StrictModel):
    received: dict[str, object]


async def probe(args: ProbeIn, ctx: ToolContext) -> ProbeOut:
    if args.note == "crash":
        raise RuntimeError("database password is hunter2")
    return ProbeOut(received=args.model_dump())


def _probe(name: str, **kw: object) -> ToolSpec:
    return ToolSpec(
        name=name,
        summary="Echo the parsed input",
        input_model=ProbeIn,
        output_model=ProbeOut,
        handler=probe,
        permission="demo:write",
        risk=Risk.WRITE,
        **kw,  # type: ignore[arg-type]  # test helper forwards optional fields
    )


@pytest.fixture
async def demo_client(
    keystore: KeyStore, admin_key: str, settings: Settings, tmp_path: Path
) -> AsyncIterator[httpx.AsyncClient]:
    registry = Registry(authenticator=keystore, audit_sink=JsonlAuditSink(tmp_path / "a.jsonl"))
    registry.extend(CATALOG)
    registry.add(_probe("demo.probe", rest=RestAlias("GET", "/v1/probe/{item}")))
    registry.add(
        _probe("demo.gated", requires_approval=True, rest=RestAlias("PUT", "/v1/gated/{item}"))
    )

    half_ready = HealthBoard()

    async def registry_up() -> ComponentStatus:
        return ComponentStatus(True)

    async def nats_connecting() -> ComponentStatus:
        return ComponentStatus(False, "connecting")

    half_ready.add("registry", registry_up)
    half_ready.add("nats", nats_connecting)
    async with (
        serve(registry, settings, health=half_ready) as url,
        httpx.AsyncClient(base_url=url, headers={"Authorization": f"Bearer {admin_key}"}) as c,
    ):
        yield c


async def test_query_values_follow_the_input_schema(demo_client: httpx.AsyncClient) -> None:
    response = await demo_client.get("/v1/probe/7?tags=a&tags=b&ratio=0.5&flag=true&note=null")
    assert response.json()["data"]["received"] == {
        "item": 7,
        "tags": ["a", "b"],
        "ratio": 0.5,
        "flag": True,
        "note": None,  # `null` is JSON null where the schema allows it, as on the CLI
    }
    _error(await demo_client.get("/v1/probe/seven"), 422, "invalid_input")
    _error(await demo_client.get("/v1/probe/7?flag=maybe"), 422, "invalid_input")
    _error(await demo_client.get("/v1/probe/7?ratio=1&ratio=2"), 422, "invalid_input")


def test_query_args_shapes() -> None:
    schema = {
        "properties": {
            "labels": {"type": "object", "additionalProperties": {"type": "integer"}},
            "ids": {"anyOf": [{"type": "array", "items": {"type": "integer"}}, {"type": "null"}]},
            "limit": {"anyOf": [{"type": "integer"}, {"type": "null"}]},
        }
    }
    pairs = [("labels.a", "1"), ("ids", "1"), ("ids", "2"), ("limit", "null"), ("other", "x")]
    assert query_args(pairs, schema) == {
        "labels": {"a": 1},
        "ids": [1, 2],
        "limit": None,
        "other": "x",
    }


async def test_approval_crash_and_readiness(demo_client: httpx.AsyncClient) -> None:
    gated = await demo_client.put("/v1/gated/3", json={"tags": ["x"]})
    assert "nothing ran" in str(_error(gated, 202, "approval_required")["message"])
    conflicting = await demo_client.put("/v1/gated/3", json={"item": 4})
    _error(conflicting, 422, "invalid_input")
    crash = await demo_client.post("/v1/tools/demo.probe", json={"item": 1, "note": "crash"})
    error = _error(crash, 500, "internal")
    assert "hunter2" not in crash.text and "Traceback" not in crash.text
    assert crash.json()["trace_id"] in str(error["message"])
    health = await demo_client.get("/health")
    assert health.status_code == 503
    assert health.json() == {
        "status": "degraded",
        "components": {
            "registry": {"ready": True, "detail": ""},
            "nats": {"ready": False, "detail": "connecting"},
        },
    }


async def test_a_failing_readiness_probe_is_503(
    registry: Registry, settings: Settings, admin_key: str
) -> None:
    async def broken() -> ComponentStatus:
        raise ConnectionError("nats is gone")

    board = HealthBoard()
    board.add("readiness", broken)
    app = create_app(registry, settings, health=board, mount_mcp=False)
    transport = httpx.ASGITransport(app=app)
    admin = {"Authorization": f"Bearer {admin_key}"}
    async with httpx.AsyncClient(transport=transport, base_url="http://platform") as client:
        response = await client.get("/health", headers=admin)
        anonymous = await client.get("/health")
    assert response.status_code == 503
    assert response.json()["components"]["readiness"] == {
        "ready": False,
        "detail": "ConnectionError: nats is gone",
    }
    assert anonymous.status_code == 503 and anonymous.json() == {"status": "degraded"}


async def test_metrics_count_calls_by_outcome(client: httpx.AsyncClient) -> None:
    await client.post("/v1/tools/server.register", json={"name": "m-1"})
    await client.post("/v1/tools/server.register", json={"name": "m-1"})
    response = await client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    text = response.text
    assert 'prvng_tool_calls_total{outcome="ok",tool="server.register"} 1.0' in text
    assert 'prvng_tool_calls_total{outcome="conflict",tool="server.register"} 1.0' in text
    assert 'prvng_tool_call_duration_seconds_count{tool="server.register"} 2.0' in text
    assert "process_resident_memory_bytes" in text
    async with httpx.AsyncClient(base_url=str(client.base_url)) as anonymous:
        assert (await anonymous.get("/metrics")).status_code == 401


SEED_PATHS = (
    ("GET", "/tasks", "task.list"),
    ("POST", "/workflows/servers/create", "server.create"),
    ("POST", "/workflows/taskserv/create", "taskserv.create"),
    ("GET", "/workflows/{id}", "workflow.get"),
)


async def test_every_operation_is_under_v1_and_the_seed_paths_stay_deprecated_aliases(
    client: httpx.AsyncClient, registry: Registry
) -> None:
    routes = {spec.name: spec.rest.path if spec.rest else None for spec in registry.list()}
    assert {
        name: path for name, path in routes.items() if not (path or "").startswith("/v1/")
    } == {}
    doc = (await client.get("/openapi.json")).json()
    for method, path, tool in SEED_PATHS:
        compat = doc["paths"][path][method.lower()]
        assert compat["deprecated"] is True and compat["operationId"].startswith(f"rest.{tool}")
        current = registry.get(tool).rest
        assert current is not None and current.path.startswith("/v1/")
        assert "deprecated" not in doc["paths"][current.path][current.method.lower()]

    await client.post(
        "/v1/tools/workflow.submit",
        json={"id": "alias-1", "name": "a", "tasks": [{"id": "a", "action": "noop"}], "wait": True},
    )
    new, old = await client.get("/v1/workflows/alias-1"), await client.get("/workflows/alias-1")
    assert new.status_code == old.status_code == 200
    assert new.json()["data"] == old.json()["data"]
    assert (await client.get("/tasks", params={"workflow_id": "alias-1"})).json()["data"] == (
        await client.get("/v1/tasks", params={"workflow_id": "alias-1"})
    ).json()["data"]
