"""The audit log under attack: a flood of unauthenticated requests stays small and counted,
and the log rotates by size and age, keeping only its retention."""

from __future__ import annotations

import asyncio
import dataclasses
import http.client
import stat
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest

from daemons.common.settings import Settings
from registry import AuditRecord, JsonlAuditSink, Registry
from registry.audit import FanOutSink
from registry.timestamps import utc_now_iso
from servers.assembly import build_registry
from servers.supervisor import serve

FLOOD = 200
PATH_BYTES = 64 * 1024


def _flood(url: str, path: str, n: int) -> list[int]:
    """`n` GETs of `path`, each on its own connection (httpx refuses URLs this long).

    h11 may refuse a long request line that arrives in pieces (400) and close the
    connection, or reset it; those never reach the app and count as 0."""
    parts = urlsplit(url)
    statuses = []
    for _ in range(n):
        conn = http.client.HTTPConnection(parts.hostname or "", parts.port, timeout=30)
        try:
            conn.request("GET", path)
            response = conn.getresponse()
            response.read()
            statuses.append(response.status)
        except (ConnectionError, http.client.HTTPException):
            statuses.append(0)
        finally:
            conn.close()
    return statuses


def _records(log_dir: Path) -> list[dict[str, Any]]:
    return JsonlAuditSink(log_dir / "audit.jsonl").read()


async def test_an_unauthenticated_flood_leaves_the_audit_log_small_and_counted(
    registry: Registry, settings: Settings, admin_key: str
) -> None:
    audit_log = settings.logs_dir / "audit.jsonl"
    long_path = "/v1/" + "a" * PATH_BYTES
    settings = dataclasses.replace(settings, rate_limits="failed_auth=20/min")
    auth = {"Authorization": f"Bearer {admin_key}"}
    elsewhere = httpx.AsyncHTTPTransport(local_address="127.0.0.2")
    async with (
        serve(registry, settings) as url,
        httpx.AsyncClient(base_url=url) as client,
        httpx.AsyncClient(base_url=url, transport=elsewhere) as other,
    ):
        statuses = await asyncio.to_thread(_flood, url, long_path, FLOOD)
        # The flooding address is held back, its key unchecked; a valid key from another
        # address gets in.
        assert (await client.get("/v1/tools", headers=auth)).status_code == 429
        assert (await other.get("/v1/tools", headers=auth)).status_code == 200
    # h11 answers 400 itself, before the app, when a long request line arrives in pieces.
    reached = [status for status in statuses if status not in (0, 400)]
    assert len(reached) > FLOOD // 2, statuses
    assert set(reached) == {401, 429} and reached[0] == 401  # 429: over its refusal budget
    size = audit_log.stat().st_size
    assert size < 16 * 1024, f"{FLOOD} refused requests wrote {size} bytes of audit"
    refused = [r for r in _records(settings.logs_dir) if r.get("source") == "127.0.0.1"]
    assert sum(int(r.get("count") or 1) for r in refused) == len(reached) + 1
    assert {r["outcome"] for r in refused} == {"unauthenticated", "rate_limited"}
    first = refused[0]
    assert str(first["tool"]).startswith("GET /v1/aaa") and len(str(first["tool"])) <= 256
    assert first["truncated_from"] == len("GET ") + len(long_path)


def _record(timestamp: str | None = None, tool: str = "server.register") -> AuditRecord:
    return AuditRecord.new(
        timestamp=timestamp or utc_now_iso(),
        trace_id="t" * 32,
        tool=tool,
        risk="write",
        principal="admin",
        outcome="ok",
        args_digest="sha256:" + "0" * 64,
        duration_ms=1.0,
    )


async def test_the_log_rotates_by_size_and_keeps_its_retention(tmp_path: Path) -> None:
    path = tmp_path / "logs" / "audit.jsonl"
    line_bytes = len(JsonlAuditSink.encode(_record()))
    sink = JsonlAuditSink(path, max_bytes=10 * line_bytes, retention=3)
    for _ in range(100):
        await sink.record(_record())
    sink.close()
    kept = sorted(p.name for p in path.parent.iterdir())
    assert kept == ["audit.jsonl", "audit.jsonl.1", "audit.jsonl.2", "audit.jsonl.3"]
    for file in path.parent.iterdir():
        assert stat.S_IMODE(file.stat().st_mode) == 0o600, file
        assert file.stat().st_size <= 10 * line_bytes
    assert len(sink.read()) == 40  # the current file and three rotated ones


async def test_the_log_rotates_once_its_first_record_is_older_than_the_max_age(
    tmp_path: Path,
) -> None:
    path = tmp_path / "audit.jsonl"
    old = JsonlAuditSink(path, max_age_s=3600)
    await old.record(_record("2020-01-01T00:00:00.000Z", tool="old"))
    old.close()
    # A new process (a restart) finds the old file and rotates it before appending.
    sink = JsonlAuditSink(path, max_age_s=3600, retention=1)
    await sink.record(_record(tool="new"))
    sink.close()
    assert [r["tool"] for r in JsonlAuditSink(path.with_name("audit.jsonl.1")).read()] == ["old"]
    assert [r["tool"] for r in sink.read()] == ["old", "new"]
    assert stat.S_IMODE(path.with_name("audit.jsonl.1").stat().st_mode) == 0o600


async def test_rotation_is_configured_from_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("PRVNG_AUDIT_MAX_BYTES", "4096")
    monkeypatch.setenv("PRVNG_AUDIT_MAX_AGE_S", "60")
    monkeypatch.setenv("PRVNG_AUDIT_RETENTION", "2")
    async with build_registry(Settings.from_env()) as registry:
        fan_out = registry.audit_sink
        assert isinstance(fan_out, FanOutSink)
        sink = fan_out.sinks[0]
        assert isinstance(sink, JsonlAuditSink)
        assert (sink.max_bytes, sink.max_age_s, sink.retention) == (4096, 60, 2)
