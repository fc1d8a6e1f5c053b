"""Rate limits on every tier: the call past the budget is `rate_limited` with a retry hint,
buckets refill, classes are independent, failed authentications are limited per source
before the key is checked, and memory stays bounded however many callers come."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import math
import os
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastmcp import Client
from fastmcp.client.transports import StdioTransport, StreamableHttpTransport

from daemons.common.keystore import KeyStore
from daemons.common.settings import Settings
from registry import InvalidInput, JsonlAuditSink, Principal, RateClass, RateLimited, Registry
from registry.ratelimit import TokenBucketLimiter, limits_from, parse_limit
from registry.refusals import EdgeRefusals, source_of
from servers.assembly import build_registry
from servers.supervisor import serve
from tools import all_specs

PROJECT = Path(__file__).resolve().parents[1]
PRVNG = str(Path(sys.executable).with_name("prvng"))
TIGHT = "read=0.001/s:2"
"""Two reads, then none for a long while: the third call of a test is refused."""


def _limited(settings: Settings, limits: str = TIGHT) -> Settings:
    return dataclasses.replace(settings, rate_limits=limits)


@pytest.fixture
async def tight(settings: Settings, keystore: KeyStore) -> AsyncIterator[Registry]:
    async with build_registry(_limited(settings), keystore=keystore) as registry:
        yield registry


def _assert_limited(error: dict[str, Any]) -> float:
    """The refusal every tier shows; its retry hint in seconds."""
    assert error["code"] == "rate_limited", error
    retry_after = float(error["details"]["retry_after_s"])
    assert retry_after > 0
    assert error["message"].startswith(f"rate limited: retry in {math.ceil(retry_after)} s")
    return retry_after


def _tool_error(result: Any) -> dict[str, Any]:
    content: dict[str, Any] = result.structured_content
    return dict(content["error"])


def _audited(settings: Settings) -> list[dict[str, Any]]:
    return JsonlAuditSink(settings.logs_dir / "audit.jsonl").read()


# -- every tier ------------------------------------------------------------------------


async def test_http_answers_429_with_retry_after(
    tight: Registry, settings: Settings, admin_key: str
) -> None:
    auth = {"Authorization": f"Bearer {admin_key}"}
    async with (
        serve(tight, _limited(settings)) as url,
        httpx.AsyncClient(base_url=url, headers=auth) as client,
    ):
        statuses = [(await client.get("/v1/tools")).status_code]  # tools.list: a read too
        statuses.append((await client.post("/v1/tools/platform.info", json={})).status_code)
        refused = await client.post("/v1/tools/platform.info", json={})
    assert statuses == [200, 200]
    assert refused.status_code == 429
    retry_after = _assert_limited(refused.json()["error"])
    assert refused.headers["Retry-After"] == str(max(1, math.ceil(retry_after)))
    assert refused.json()["error"]["details"]["class"] == "read"


async def test_mcp_over_http_answers_the_same_tool_error(
    tight: Registry, settings: Settings, admin_key: str
) -> None:
    async with serve(tight, _limited(settings)) as url:
        client = Client(StreamableHttpTransport(f"{url}/mcp/", auth=admin_key))
        async with client:
            results = [
                await client.call_tool("platform.info", {}, raise_on_error=False) for _ in range(3)
            ]
    assert [r.is_error for r in results] == [False, False, True]
    _assert_limited(_tool_error(results[2]))


def _stdio(env: dict[str, str]) -> StdioTransport:
    code = "from daemons.common.settings import Settings; "
    code += "from servers.cli.processes import run_stdio; run_stdio(Settings.from_env())"
    return StdioTransport(sys.executable, ["-c", code], env=env, cwd=str(PROJECT), keep_alive=False)


async def test_stdio_mcp_limits_its_in_process_owner(registry: Registry) -> None:
    env = {**os.environ, "PRVNG_RATE_LIMITS": TIGHT}
    async with Client(_stdio(env)) as client:
        results = [
            await client.call_tool("platform.info", {}, raise_on_error=False) for _ in range(3)
        ]
    assert [r.is_error for r in results] == [False, False, True]
    _assert_limited(_tool_error(results[2]))


def _prvng(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [PRVNG, *args], capture_output=True, text=True, timeout=60, check=False, env=env
    )


async def test_cli_remote_says_when_to_retry_and_exits_7(
    tight: Registry, settings: Settings, admin_key: str
) -> None:
    async with serve(tight, _limited(settings)) as url:
        args = ("call", "platform.info", "--url", url, "--api-key", admin_key)
        done = [await asyncio.to_thread(_prvng, *args) for _ in range(3)]
    assert [d.returncode for d in done] == [0, 0, 7], done[2].stderr
    assert "error[rate_limited]: rate limited: retry in " in done[2].stderr
    async with serve(tight, _limited(settings)) as url:  # the same registry: still spent
        args = ("call", "platform.info", "--url", url, "--api-key", admin_key)
        again = await asyncio.to_thread(_prvng, "--output", "json", *args)
    assert again.returncode == 7
    _assert_limited(json.loads(again.stderr)["error"])


# -- buckets ---------------------------------------------------------------------------


async def test_a_bucket_refills_after_the_hint(
    settings: Settings, keystore: KeyStore, owner: Principal
) -> None:
    async with build_registry(_limited(settings, "read=2/s:1"), keystore=keystore) as registry:
        assert (await registry.invoke("platform.info", principal=owner)).ok
        refused = await registry.invoke("platform.info", principal=owner)
        assert refused.error is not None
        retry_after = _assert_limited(refused.error)
        assert retry_after <= 0.5
        await asyncio.sleep(retry_after)  # the hint is the contract: then the call passes
        assert (await registry.invoke("platform.info", principal=owner)).ok


async def test_classes_are_independent(
    settings: Settings, keystore: KeyStore, owner: Principal
) -> None:
    limits = "read=0.001/s:3,write=0.001/s:1"
    async with build_registry(_limited(settings, limits), keystore=keystore) as registry:
        assert (await registry.invoke("server.register", {"name": "w-1"}, principal=owner)).ok
        spent = await registry.invoke("server.register", {"name": "w-2"}, principal=owner)
        assert spent.error is not None and spent.error["details"]["class"] == "write"
        reads = [await registry.invoke("server.list", principal=owner) for _ in range(3)]
        assert all(env.ok for env in reads)  # writes spent, reads untouched
        assert (await registry.invoke("server.list", principal=owner)).code == "rate_limited"
        other = Principal("someone-else", frozenset({"admin"}))
        assert (await registry.invoke("server.list", principal=other)).ok  # per principal


def test_every_tool_has_the_class_its_cost_says() -> None:
    by_class: dict[RateClass, set[str]] = {}
    for spec in all_specs():
        by_class.setdefault(spec.limit_class, set()).add(spec.name)
    assert by_class[RateClass.EXEC] == {
        "workflow.submit",
        "workflow.retry",
        "workflow.rollback",
        "server.create",
        "server.delete",
        "taskserv.create",
        "taskserv.delete",
    }
    assert by_class[RateClass.AUTH] == {"session.login", "session.refresh", "session.logout"}
    assert {"server.register", "workflow.cancel", "apikey.create"} <= by_class[RateClass.WRITE]
    assert {"platform.info", "workflow.wait", "tools.list"} <= by_class[RateClass.READ]


async def test_the_defaults_protect_and_admins_are_not_exempt(
    settings: Settings, keystore: KeyStore, owner: Principal
) -> None:
    defaults = dataclasses.replace(settings, rate_limits=None)
    read = limits_from(None)["read"]
    assert read is not None and all(limits_from(None).values())
    async with build_registry(defaults, keystore=keystore) as registry:
        codes = [
            (await registry.invoke("platform.info", principal=owner)).code
            for _ in range(10 * read.burst)
        ]
    assert codes[: read.burst] == [None] * read.burst  # the burst, then a loop is stopped
    assert "rate_limited" in codes
    exempt = dataclasses.replace(defaults, rate_limit_exempt=("admin",))
    async with build_registry(exempt, keystore=keystore) as registry:
        for _ in range(read.burst + 1):
            assert (await registry.invoke("platform.info", principal=owner)).ok


async def test_a_bad_setting_stops_the_start_with_its_reason(
    settings: Settings, keystore: KeyStore
) -> None:
    for bad in ("read=fast", "reads=10/s", "write=0/s", "exec=10/s:0"):
        with pytest.raises(InvalidInput, match=r"PRVNG_RATE_LIMITS|rate limit"):
            build_registry(_limited(settings, bad), keystore=keystore)
    per_min, per_60s = parse_limit("20/min"), parse_limit("20/60s")
    assert per_min and per_60s and (per_min.rate, per_min.burst) == (per_60s.rate, 20)
    assert parse_limit("off") is None


async def test_memory_stays_bounded_with_100k_principals(tmp_path: Path) -> None:
    sink = JsonlAuditSink(tmp_path / "audit.jsonl")
    limiter = TokenBucketLimiter({"read": parse_limit("0.001/s:2")}, sink=sink, max_buckets=1000)
    spec = next(s for s in all_specs() if s.name == "platform.info")
    attacker = Principal("attacker")
    for _ in range(2):
        await limiter.check(attacker, spec, "t")
    for n in range(100_000):
        await limiter.check(Principal(f"p-{n}"), spec, "t")  # each one's first call passes
        if n % 100 == 0:  # one that keeps trying stays limited: it is evicted last
            with pytest.raises(RateLimited, match="rate limited"):
                await limiter.check(attacker, spec, "t")
    assert limiter.buckets <= 1000


async def test_failing_sources_stay_bounded_with_100k_addresses(tmp_path: Path) -> None:
    refusals = EdgeRefusals(JsonlAuditSink(tmp_path / "audit.jsonl"), max_sources=1000)
    for _ in range(refusals.burst):
        await refusals.failed("10.0.0.1")
    for n in range(100_000):
        await refusals.failed(f"10.{n >> 16}.{(n >> 8) & 255}.{n & 255}")
        if n % 100 == 0:
            assert refusals.blocked("10.0.0.1") is not None
            await refusals.record("10.0.0.1", "GET /", RateLimited("held back"), "t")
    assert refusals.sources <= 1000


# -- failed authentication, per source -------------------------------------------------


class _Counting:
    """The real authenticator, counting what it is asked to check."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.checked = 0

    async def authenticate(self, credential: str) -> Principal | None:
        self.checked += 1
        principal: Principal | None = await self.inner.authenticate(credential)
        return principal


async def test_a_guessing_source_is_held_back_before_its_key_is_checked(
    registry: Registry, settings: Settings, admin_key: str
) -> None:
    counting = registry.authenticator = _Counting(registry.authenticator)
    bad = {"Authorization": "Bearer prvng_000000000000_not-a-key"}
    good = {"Authorization": f"Bearer {admin_key}"}
    elsewhere = httpx.AsyncHTTPTransport(local_address="127.0.0.2")
    async with (
        serve(registry, _limited(settings, "failed_auth=3/min")) as url,
        httpx.AsyncClient(base_url=url) as here,
        httpx.AsyncClient(base_url=url, transport=elsewhere) as there,
    ):
        guesses = [(await here.get("/v1/tools", headers=bad)).status_code for _ in range(3)]
        assert guesses == [401, 401, 401] and counting.checked == 3
        held = [
            await here.get("/v1/tools", headers=good),
            await here.post("/mcp/", headers=good, json={"jsonrpc": "2.0", "id": 1}),
            await here.post("/v1/tools/platform.info", headers=bad, json={}),
        ]
        assert counting.checked == 3  # held back for free: no key was looked at
        for response in held:
            assert response.status_code == 429
            retry_after = _assert_limited(response.json()["error"])
            assert response.headers["Retry-After"] == str(math.ceil(retry_after))
        health = (await here.get("/health", headers=good)).json()
        assert "components" not in health  # no oracle there either
        assert (await there.get("/v1/tools", headers=good)).status_code == 200
        assert (await there.get("/v1/tools", headers=bad)).status_code == 401  # its own budget
        assert "components" in (await there.get("/health", headers=good)).json()
    refused = [r for r in _audited(settings) if r.get("source") == "127.0.0.1"]
    assert [r["outcome"] for r in refused] == ["unauthenticated"] * 3 + ["rate_limited"] * 3


async def test_a_flood_of_limited_calls_is_audited_compactly(
    settings: Settings, keystore: KeyStore, owner: Principal
) -> None:
    limited = _limited(settings, "write=0.001/s:1")
    async with build_registry(limited, keystore=keystore) as registry:
        for n in range(201):
            await registry.invoke("server.register", {"name": f"f-{n}"}, principal=owner)
        await registry.resources.peek(TokenBucketLimiter).flush()
    records = [r for r in _audited(limited) if r["outcome"] == "rate_limited"]
    assert len(records) == 11  # ten one by one, then one that counts the rest
    assert sum(int(r.get("count") or 1) for r in records) == 200
    assert {r["principal"] for r in records} == {owner.id}


def test_an_ipv6_host_is_one_source_for_its_whole_64() -> None:
    assert source_of("2001:db8:1:2::1") == source_of("2001:db8:1:2:ffff::9") == "2001:db8:1:2::/64"
    assert source_of("2001:db8:1:3::1") != source_of("2001:db8:1:2::1")
    assert source_of("192.0.2.7") == "192.0.2.7"


async def test_the_audit_window_starts_with_the_first_refusal(tmp_path: Path) -> None:
    """A bucket older than the window still sums its refusals (the window is the flood's)."""
    sink = JsonlAuditSink(tmp_path / "audit.jsonl")
    limiter = TokenBucketLimiter(
        {"read": parse_limit("0.001/s:1")}, sink=sink, window_s=0.5, detailed=2
    )
    spec = next(s for s in all_specs() if s.name == "platform.info")
    caller = Principal("old-timer")
    await limiter.check(caller, spec, "t")
    await asyncio.sleep(0.6)  # the bucket is now older than a window
    for _ in range(50):
        with pytest.raises(RateLimited) as refused:
            await limiter.check(caller, spec, "t")
    assert refused.value.summed  # past the detailed ones: counted, not audited alone
    await limiter.flush()
    (summary,) = sink.read()
    assert summary["count"] == 48 and summary["principal"] == "old-timer"
