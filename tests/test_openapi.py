"""The OpenAPI document: valid 3.1, every tool with its schemas and error statuses."""

from __future__ import annotations

from pathlib import Path

import httpx
from openapi_pydantic import OpenAPI

from daemons.common.keystore import KeyStore
from daemons.common.settings import Settings
from registry import ErrorCode, JsonlAuditSink, Registry, Risk, ToolSpec, listing_output_schema
from registry.schema import input_schema, output_schema
from servers.http import create_app
from servers.http.openapi import openapi_document
from tools.platform import TOOLS as PLATFORM_TOOLS


def _statuses(operation: dict[str, object]) -> set[str]:
    return set(operation["responses"])  # type: ignore[call-overload]


def _refs(node: object) -> list[str]:
    if isinstance(node, dict):
        own = [node["$ref"]] if isinstance(node.get("$ref"), str) else []
        return own + [ref for value in node.values() for ref in _refs(value)]
    if isinstance(node, list):
        return [ref for item in node for ref in _refs(item)]
    return []


def _resolve(doc: dict[str, object], ref: str) -> object:
    node: object = doc
    for part in ref.removeprefix("#/").split("/"):
        assert isinstance(node, dict) and part in node, f"dangling $ref {ref}"
        node = node[part]
    return node


def test_document_is_valid_openapi_with_every_tool(registry: Registry) -> None:
    doc = openapi_document(registry)
    parsed = OpenAPI.model_validate(doc)
    assert parsed.openapi == "3.1.0" and doc["info"]["version"]
    assert doc["components"]["securitySchemes"]["bearerAuth"]["scheme"] == "bearer"
    schemas = doc["components"]["schemas"]
    assert schemas["ToolListing"] == listing_output_schema()
    error_codes = schemas["ErrorEnvelope"]["properties"]["error"]["properties"]["code"]["enum"]
    assert error_codes == [code.value for code in ErrorCode]
    for spec in registry.list():
        operation = doc["paths"][f"/v1/tools/{spec.name}"]["post"]
        assert operation["operationId"] == spec.name and operation["tags"] == [spec.group]
        assert operation["summary"] == spec.summary
        body = operation["requestBody"]["content"]["application/json"]["schema"]
        assert body == input_schema(spec.input_model)
        ok = operation["responses"]["200"]["content"]["application/json"]["schema"]
        assert ok["allOf"][1]["properties"]["data"] == output_schema(spec.output_model)
        expected = {"200", "401", "403", "404", "422", "429", "500", "503", "413", "415"}
        if spec.risk is not Risk.READ:
            expected.add("409")
        if spec.follow is not None:  # waits for a workflow: workflow_failed, still_running
            expected |= {"409", "202"}
        assert _statuses(operation) == expected
    for ref in _refs(doc):
        _resolve(doc, ref)
    assert "security" not in doc["paths"]["/v1/tools"]["get"]
    assert doc["paths"]["/health"]["get"]["security"] == []


def test_rest_aliases_document_their_parameters(registry: Registry) -> None:
    doc = openapi_document(registry)
    listing = doc["paths"]["/v1/servers"]["get"]
    params = {p["name"]: p for p in listing["parameters"]}
    assert set(params) == {"provider", "labels", "all", "limit", "offset"}
    assert all(p["in"] == "query" and not p["required"] for p in params.values())
    assert params["limit"]["schema"]["type"] == "integer"
    assert "labels.KEY=VALUE" in params["labels"]["description"]
    register = doc["paths"]["/v1/servers"]["post"]
    assert register["operationId"] == "rest.server.register" and "409" in register["responses"]
    get = doc["paths"]["/v1/servers/{name}"]["get"]
    assert get["parameters"] == [
        {
            "name": "name",
            "in": "path",
            "required": True,
            "schema": input_schema(registry.get("server.get").input_model)["properties"]["name"],
            "description": get["parameters"][0]["description"],
        }
    ]
    delete = doc["paths"]["/v1/servers/{name}"]["delete"]
    assert "409" in delete["responses"] and "requestBody" not in delete


def test_approval_tools_document_202_and_cache_follows_the_registry(
    keystore: KeyStore, tmp_path: Path
) -> None:
    demo = Registry(authenticator=keystore, audit_sink=JsonlAuditSink(tmp_path / "a.jsonl"))
    demo.extend(PLATFORM_TOOLS)
    first = openapi_document(demo)
    assert openapi_document(demo) is first
    info = PLATFORM_TOOLS[1]
    gated = ToolSpec(
        name="demo.gated",
        summary="Needs an approval",
        input_model=info.input_model,
        output_model=info.output_model,
        handler=info.handler,
        permission="demo:write",
        risk=Risk.DESTRUCTIVE,
        requires_approval=True,
    )
    demo.add(gated)
    second = openapi_document(demo)
    assert second is not first
    operation = second["paths"]["/v1/tools/demo.gated"]["post"]
    assert {"202", "409"} <= _statuses(operation)
    assert "202" not in _statuses(second["paths"]["/v1/tools/platform.info"]["post"])
    OpenAPI.model_validate(second)


async def test_served_at_openapi_json_without_auth(registry: Registry, settings: Settings) -> None:
    app = create_app(registry, settings, mount_mcp=False)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://platform") as client:
        response = await client.get("/openapi.json")
    assert response.status_code == 200
    assert response.json() == openapi_document(registry)
