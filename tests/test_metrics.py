"""`GET /metrics` is action `metrics.read`: viewers and up, or whom a policy names."""

from __future__ import annotations

import dataclasses
import shutil
from pathlib import Path

import httpx

from daemons.common.exposition import CONTENT_TYPE
from daemons.common.keystore import KeyStore
from daemons.common.settings import PROJECT_ROOT, Settings
from registry import JsonlAuditSink, Registry
from servers.assembly import build_registry
from servers.supervisor import serve


def _bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


async def test_metrics_need_a_role_that_may_read_them(
    registry: Registry, settings: Settings, keystore: KeyStore
) -> None:
    viewer, nobody = keystore.create("vic", ["viewer"]), keystore.create("nobody", [])
    async with serve(registry, settings) as url, httpx.AsyncClient(base_url=url) as client:
        assert (await client.get("/metrics")).status_code == 401
        scraped = await client.get("/metrics", headers=_bearer(viewer))
        assert scraped.status_code == 200 and "prvng_tool_calls" in scraped.text
        denied = await client.get("/metrics", headers=_bearer(nobody))
    assert denied.status_code == 403
    error = denied.json()["error"]
    assert error["code"] == "forbidden" and "metrics.read" in error["message"]
    audited = JsonlAuditSink(settings.logs_dir / "audit.jsonl").read()
    assert [(r["tool"], r["principal"], r["outcome"]) for r in audited] == [
        ("GET /metrics", None, "unauthenticated"),
        ("metrics.read", "nobody", "forbidden"),
    ]


async def test_a_policy_may_grant_only_the_metrics(
    settings: Settings, keystore: KeyStore, tmp_path: Path
) -> None:
    config = tmp_path / "config"
    shutil.copytree(PROJECT_ROOT / "config" / "policies", config / "policies")
    (config / "policies" / "scraper.cedar").write_text(
        'permit (principal in Role::"scraper", action == Action::"metrics.read", resource);\n'
    )
    custom = dataclasses.replace(settings, config_dir=config)
    scraper = keystore.create("prometheus", ["scraper"])
    async with (
        build_registry(custom, keystore=keystore) as registry,  # the policy validates
        serve(registry, custom) as url,
        httpx.AsyncClient(base_url=url, headers=_bearer(scraper)) as client,
    ):
        assert (await client.get("/metrics")).status_code == 200
        assert (await client.post("/v1/tools/platform.info", json={})).status_code == 403


async def test_a_scrape_is_a_call_of_the_pipeline(
    registry: Registry, settings: Settings, keystore: KeyStore
) -> None:
    """Counted like every call (and so rate-limited and audited by the same steps); the
    same text is `metrics.read`'s output on every tier."""
    viewer = keystore.create("vic", ["viewer"])
    async with (
        serve(registry, settings) as url,
        httpx.AsyncClient(base_url=url, headers=_bearer(viewer)) as client,
    ):
        first = await client.get("/metrics")
        second = await client.get("/metrics")
        called = await client.post("/v1/tools/metrics.read", json={})
    assert first.headers["content-type"] == CONTENT_TYPE
    assert 'prvng_tool_calls_total{outcome="ok",tool="metrics.read"}' not in first.text
    assert 'prvng_tool_calls_total{outcome="ok",tool="metrics.read"} 1.0' in second.text
    assert called.json()["ok"] and "prvng_tool_calls_total" in called.json()["data"]["exposition"]
