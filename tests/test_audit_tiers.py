"""Every tier's mutations and denials land in the SurrealDB audit with who, tool, target,
decision, outcome, trace id, time and tier, and no secret value reaches any of it."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import os
import subprocess
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastmcp import Client

from daemons.common.audit_store import AuditStore
from daemons.common.keystore import KeyStore
from daemons.common.settings import Settings
from daemons.common.state import StateStore
from registry import Principal, Registry
from servers.assembly import build_registry
from servers.mcp import build_mcp
from servers.supervisor import serve

PRVNG = str(Path(sys.executable).with_name("prvng"))
SECRET = "s3cret-value-that-must-never-be-audited"

Caller = Callable[[str, dict[str, Any], str], Awaitable[None]]
"""Calls `(tool, args, api key)` on one tier."""


async def _query(registry: Registry, owner: Principal, **filters: Any) -> list[dict[str, Any]]:
    env = await registry.invoke("audit.query", filters, principal=owner)
    assert env.ok, env.error
    assert isinstance(env.data, dict)
    records: list[dict[str, Any]] = env.data["records"]
    return records


async def _prvng(*argv: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return await asyncio.to_thread(
        subprocess.run,
        [PRVNG, *argv],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def _cli(env: dict[str, str]) -> Caller:
    async def call(tool: str, args: dict[str, Any], key: str) -> None:
        await _prvng("call", tool, "--json", json.dumps(args), env={**env, "PRVNG_API_KEY": key})

    return call


def _http(url: str) -> Caller:
    async def call(tool: str, args: dict[str, Any], key: str) -> None:
        async with httpx.AsyncClient(base_url=url) as client:
            headers = {"Authorization": f"Bearer {key}"}
            await client.post(f"/v1/tools/{tool}", json=args, headers=headers)

    return call


def _mcp_http(url: str) -> Caller:
    async def call(tool: str, args: dict[str, Any], key: str) -> None:
        async with Client(f"{url}/mcp", auth=key) as client:
            await client.call_tool(tool, args, raise_on_error=False)

    return call


def _mcp_stdio(registry: Registry, keystore: KeyStore) -> Caller:
    """The stdio server's own code path (`build_mcp` with the process's principal)."""

    async def call(tool: str, args: dict[str, Any], key: str) -> None:
        principal = keystore.check(key)
        assert principal is not None
        async with Client(build_mcp(registry, principal=principal)) as client:
            await client.call_tool(tool, args, raise_on_error=False)

    return call


async def _exercise(call: Caller, admin: str, viewer: str, tag: str) -> None:
    await call("user.create", {"name": f"{tag}-a"}, admin)
    await call("user.create", {"name": f"{tag}-v"}, viewer)
    await call("secret.set", {"name": f"{tag}-pw", "value": SECRET}, admin)
    await call("secret.set", {"name": f"{tag}-pw", "value": SECRET}, viewer)


def _check(records: list[dict[str, Any]], tier: str, tag: str) -> None:
    mine = [r for r in records if r["tier"] == tier]
    by_call = {(r["tool"], r["principal"]): r for r in mine}
    mutation = by_call[("user.create", "admin")]
    assert mutation["outcome"] == "ok" and mutation["decision"] == "allow"
    assert mutation["target"] == f"user:{tag}-a"
    denial = by_call[("user.create", "vic")]
    assert denial["outcome"] == "forbidden" and denial["decision"] == "deny"
    assert denial["target"] == f"user:{tag}-v"
    assert by_call[("secret.set", "admin")]["outcome"] == "ok"
    assert by_call[("secret.set", "vic")]["decision"] == "deny"
    for record in mine:
        assert len(record["trace_id"]) >= 8 and record["timestamp"].endswith("Z")
        assert record["risk"] == "write" and record["args_digest"].startswith("sha256:")


@pytest.mark.timeout(240)
async def test_every_tier_audits_its_mutations_and_denials_without_secrets(
    settings: Settings, keystore: KeyStore, owner: Principal, admin_key: str, tmp_path: Path
) -> None:
    settings = dataclasses.replace(settings, surreal_url=f"surrealkv://{tmp_path / 'db'}")
    viewer = keystore.create("vic", ["viewer"])
    env = {**os.environ, "PRVNG_SURREAL_URL": str(settings.surreal_url)}
    await _exercise(_cli(env), admin_key, viewer, "local")  # no platform: in process
    registry = build_registry(settings, keystore=keystore)
    try:
        async with serve(registry, settings, write_run_file=True) as url:
            await _exercise(_http(url), admin_key, viewer, "rest")
            await _exercise(_mcp_http(url), admin_key, viewer, "mcph")
            await _exercise(_cli(env), admin_key, viewer, "remote")  # finds the run file
        await _exercise(_mcp_stdio(registry, keystore), admin_key, viewer, "mcps")
        records = await _query(registry, owner, limit=500)
        for tier, tag in (
            ("cli-local", "local"),
            ("http", "rest"),
            ("mcp-http", "mcph"),
            ("cli-remote", "remote"),
            ("mcp-stdio", "mcps"),
        ):
            _check(records, tier, tag)
        raw = await (await registry.resources.get(StateStore)).query("SELECT * FROM audit")
        assert SECRET not in json.dumps(raw) and SECRET not in json.dumps(records)
    finally:
        await registry.aclose()
    tail = (settings.logs_dir / "audit.jsonl").read_text()
    assert '"tier":"cli-local"' in tail and SECRET not in tail


async def test_a_refusal_at_the_edge_names_its_tier_and_is_a_denial(
    registry: Registry, settings: Settings, owner: Principal, admin_key: str
) -> None:
    async with serve(registry, settings) as url, httpx.AsyncClient(base_url=url) as client:
        await client.post("/v1/tools/server.register", json={}, headers={"X-Trace-Id": "edge-rest"})
        await client.post("/mcp/", json={}, headers={"X-Trace-Id": "edge-mcp-1"})
        await _query(registry, owner, limit=1)  # writes what is queued
        auth = {"Authorization": f"Bearer {admin_key}"}
        metrics = (await client.get("/metrics", headers=auth)).text
    rest = await _query(registry, owner, trace_id="edge-rest")
    mcp = await _query(registry, owner, trace_id="edge-mcp-1")
    assert [(r["tier"], r["decision"], r["outcome"]) for r in rest] == [
        ("http", "deny", "unauthenticated")
    ]
    assert [(r["tier"], r["source"]) for r in mcp] == [("mcp-http", "127.0.0.1")]
    store = registry.resources.peek(AuditStore)
    assert store.written >= 2 and store.dropped == 0
    assert f"prvng_audit_index_written_total {float(store.written)}" in metrics
    assert "prvng_audit_index_dropped_total 0.0" in metrics


async def test_the_audit_reads_over_its_rest_alias_with_typed_query_parameters(
    registry: Registry, settings: Settings, admin_key: str
) -> None:
    async with serve(registry, settings) as url, httpx.AsyncClient(base_url=url) as client:
        auth = {"Authorization": f"Bearer {admin_key}"}
        for name in ("rest-a", "rest-b"):
            await client.post("/v1/tools/user.create", json={"name": name}, headers=auth)
        query = {"tool": "user.*", "since": "2020-01-01T00:00:00Z", "limit": "1"}
        first = (await client.get("/v1/audit", params=query, headers=auth)).json()
        query["cursor"] = first["data"]["next_cursor"]
        second = (await client.get("/v1/audit", params=query, headers=auth)).json()
    assert first["ok"] and second["ok"], (first, second)
    targets = [page["data"]["records"][0]["target"] for page in (first, second)]
    assert set(targets) == {"user:rest-a", "user:rest-b"}  # one a page; same-ms ties sort by id
    assert second["data"]["next_cursor"] is None


async def test_a_nul_in_a_refused_path_does_not_break_reading_the_audit(
    registry: Registry, settings: Settings, owner: Principal
) -> None:
    """Found by the fuzzer: the engine stores a NUL but cannot answer it, so one refused
    request for `/v1/a%00b` made every later `audit.query` over it fail."""
    async with serve(registry, settings) as url, httpx.AsyncClient(base_url=url) as client:
        await client.get("/v1/a%00b", headers={"X-Trace-Id": "nul-in-path"})
    records = await _query(registry, owner, trace_id="nul-in-path")
    assert [r["tool"] for r in records] == ["GET /v1/a\ufffdb"]
