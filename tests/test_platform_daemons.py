"""The daemons `prvng platform start` runs beside the HTTP tier: ncl-sync keeps the running
platform's config cache warm (an edit is re-exported before anyone reads it), and the audit
mirror waits for NATS when none is configured, without holding up `/health`."""

from __future__ import annotations

import shutil
from pathlib import Path

import httpx
import pytest

from daemons.common.keystore import KeyStore
from daemons.common.settings import Settings
from daemons.ncl_sync import ConfigCache
from servers.assembly import build_registry
from servers.daemon_components import NclSyncComponent
from servers.supervisor import HttpComponent, build_platform
from tests.waiting import until

PROJECT = Path(__file__).resolve().parents[1]


@pytest.fixture
def workspace(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A workspace of one `.ncl` file (and the platform's policies)."""
    ws = tmp_path / "workspace"
    shutil.copytree(PROJECT / "config" / "policies", ws / "policies")
    (ws / "app.ncl").write_text("{ port = 8080 }\n")
    monkeypatch.setenv("PRVNG_CONFIG", str(ws))
    return ws


async def test_ncl_sync_runs_in_the_platform_and_re_exports_an_edit(workspace: Path) -> None:
    settings = Settings.from_env()
    keystore = KeyStore(settings)
    admin = {"Authorization": f"Bearer {keystore.ensure_admin_key().read_text().strip()}"}
    async with build_registry(settings, keystore=keystore) as registry:
        platform = build_platform(settings, registry, "127.0.0.1", 0)
        await platform.start()
        try:
            http = platform.components[-1]
            assert isinstance(http, HttpComponent)
            async with httpx.AsyncClient(base_url=http.url, headers=admin) as client:

                async def components() -> dict[str, dict[str, object]]:
                    response = await client.get("/health")
                    assert response.status_code == 200, response.text
                    return dict(response.json()["components"])

                first = await components()
                assert first["ncl-sync"] == {"ready": True, "detail": "watching 1 files, 1 cached"}
                assert first["audit-mirror"]["ready"] is True
                assert "committed" in str(first["audit-mirror"]["detail"])  # on the bundled NATS

                (workspace / "app.ncl").write_text("{ port = 9090 }\n")

                async def exported() -> bool:
                    return (await components())["ncl-sync"]["detail"] == (
                        "watching 1 files, 2 cached"
                    )

                await until(exported, what="ncl-sync exporting the edit", within_s=30)
                cache = registry.resources.peek(ConfigCache)
                misses = cache.stats.misses
                answer = await client.post("/v1/tools/config.export", json={"path": "app.ncl"})
                assert answer.json()["data"]["value"] == {"port": 9090}, answer.text
                assert cache.stats.misses == misses  # ncl-sync exported it, not this read
        finally:
            await platform.stop()
    ncl_sync = next(c for c in platform.components if isinstance(c, NclSyncComponent))
    assert (await ncl_sync.status()).detail == "stopped" and not platform.running
