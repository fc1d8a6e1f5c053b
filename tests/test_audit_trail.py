"""`audit.verify` on the home's real signed repository: a forged commit is named by the
tool (ok=false, not an error) as by the offline `prvng audit verify` (exit 5); only an
admin may ask; the generated command does not shadow the offline one."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from daemons.common.settings import Settings
from registry import Principal, Registry
from servers.supervisor import serve
from tests.audit_mirror.forgery import commit_signed_events, forge_unsigned_commit

PRVNG = str(Path(sys.executable).with_name("prvng"))


def prvng(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [PRVNG, *args], capture_output=True, text=True, env=dict(os.environ), timeout=60
    )


@pytest.fixture
def forged(settings: Settings) -> str:
    """Three signed events, then a commit on top that nobody signed: its id."""
    commit_signed_events(settings, 3)
    return forge_unsigned_commit(settings)


async def test_a_forged_commit_is_named_in_a_successful_answer(
    registry: Registry, owner: Principal, forged: str
) -> None:
    envelope = await registry.invoke("audit.verify", {}, principal=owner)
    assert envelope.ok, envelope.error
    data = envelope.data
    assert data["ok"] is False and data["head"] == forged and data["commits"] == 4
    assert data["events"] == 3 and data["stream_checked"] is False
    assert {"kind": "unsigned", "commit": forged, "detail": "is not signed"} in data["problems"]


async def test_an_untouched_record_verifies(
    registry: Registry, owner: Principal, settings: Settings
) -> None:
    commit_signed_events(settings, 1)
    envelope = await registry.invoke("audit.verify", {}, principal=owner)
    assert envelope.ok and envelope.data["ok"] is True, envelope.data
    assert envelope.data["commits"] == 1 and envelope.data["problems"] == []


@pytest.mark.parametrize("role", ["viewer", "operator", "approver"])
async def test_only_an_admin_may_verify(registry: Registry, forged: str, role: str) -> None:
    caller = Principal(id=f"{role}-1", roles=frozenset({role}))
    envelope = await registry.invoke("audit.verify", {}, principal=caller)
    assert not envelope.ok and envelope.error is not None
    assert envelope.error["code"] == "forbidden"


def test_the_cli_keeps_the_offline_command_and_calls_the_tool_by_name(forged: str) -> None:
    offline = prvng("audit", "verify")
    assert offline.returncode == 5, offline.stderr
    assert f"unsigned: commit {forged[:12]}" in offline.stderr
    called = prvng("call", "audit.verify")
    assert called.returncode == 0, called.stderr
    answer = json.loads(called.stdout)
    assert answer["ok"] is False
    assert [p["kind"] for p in answer["problems"]] == [
        p["kind"] for p in json.loads(offline.stdout)["problems"]
    ]


async def test_the_rest_alias_answers_the_report(
    registry: Registry, settings: Settings, admin_key: str, forged: str
) -> None:
    async with serve(registry, settings) as url, httpx.AsyncClient(base_url=url) as client:
        response = await client.get(
            "/v1/audit/verify",
            params={"stream": "false"},
            headers={"Authorization": f"Bearer {admin_key}"},
        )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["ok"] and body["data"]["ok"] is False and body["data"]["head"] == forged
