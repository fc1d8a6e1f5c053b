"""Privilege escalation from `operator`: each path the review found, over real HTTP.

Every attempt must be refused with `forbidden` (403) and land in the audit log.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path

import httpx
import pytest

from daemons.common.keystore import KeyStore
from daemons.common.settings import Settings
from registry import Registry
from servers.assembly import build_registry
from servers.supervisor import serve
from tests.conftest import environ_snapshot


@pytest.fixture
async def url(registry: Registry, settings: Settings, admin_key: str) -> AsyncIterator[str]:
    async with serve(registry, settings) as base:
        yield base


@pytest.fixture
def operator_key(keystore: KeyStore) -> str:
    return keystore.create("olga", ["operator"])


async def _call(url: str, key: str, tool: str, args: dict[str, object]) -> httpx.Response:
    async with httpx.AsyncClient(base_url=url, trust_env=False) as client:
        return await client.post(
            f"/v1/tools/{tool}", json=args, headers={"Authorization": f"Bearer {key}"}
        )


def _refused(response: httpx.Response) -> None:
    assert response.status_code == 403, response.text
    assert response.json()["error"]["code"] == "forbidden"


def _audited(settings: Settings, tool: str) -> list[dict[str, object]]:
    path = settings.logs_dir / "audit.jsonl"
    rows = [json.loads(line) for line in path.read_text().splitlines()]
    return [r for r in rows if r["tool"] == tool and r["outcome"] == "forbidden"]


def _workflow(action: str, params: dict[str, object]) -> dict[str, object]:
    return {"name": "x", "tasks": [{"id": "t", "action": action, "params": params}]}


async def test_operator_cannot_run_a_shell_task(
    url: str, operator_key: str, settings: Settings
) -> None:
    """The finding: a `shell` task runs as the platform's user and reads the admin key."""
    wf = _workflow("shell", {"command": f"cat {settings.admin_key_file}"})
    _refused(await _call(url, operator_key, "workflow.submit", wf))
    assert _audited(settings, "workflow.submit")


async def test_operator_cannot_hide_a_shell_task_in_a_compensation(
    url: str, operator_key: str
) -> None:
    wf = _workflow("noop", {})
    wf["tasks"][0]["compensate"] = {"action": "shell", "params": {"command": "id"}}  # type: ignore[index]
    _refused(await _call(url, operator_key, "workflow.submit", wf))


async def test_operator_cannot_reach_the_platform_through_an_http_task(
    url: str, operator_key: str
) -> None:
    wf = _workflow("http", {"url": f"{url}/v1/tools/tools.list", "method": "GET"})
    _refused(await _call(url, operator_key, "workflow.submit", wf))


@pytest.mark.parametrize("target", ["platform", "metadata"])
async def test_an_http_task_does_not_reach_the_platform_or_the_metadata_service(
    url: str, admin_key: str, target: str
) -> None:
    """Even an admin's http task is refused loopback and link-local addresses (unless
    PRVNG_HTTP_ACTION_ALLOW lists them): the error says so and what to set."""
    where = f"{url}/v1/tools/tools.list" if target == "platform" else "http://169.254.169.254/"
    response = await _call(
        url, admin_key, "workflow.submit", {**_workflow("http", {"url": where}), "wait": True}
    )
    assert response.status_code == 409, response.text
    (task,) = response.json()["error"]["details"]["failed_tasks"]
    assert task["error"].startswith("refused: ") and "PRVNG_HTTP_ACTION_ALLOW" in task["error"]
    assert task["attempts"] == 1  # not retried: it would be refused again


async def test_the_allow_setting_lets_an_http_task_reach_loopback(
    admin_key: str, settings: Settings, keystore: KeyStore
) -> None:
    allowed = replace(settings, http_action_allow=("127.0.0.0/8",))
    registry = build_registry(allowed, keystore=keystore)
    try:
        async with serve(registry, allowed) as base:
            wf = {**_workflow("http", {"url": f"{base}/health"}), "wait": True}
            response = await _call(base, admin_key, "workflow.submit", wf)
    finally:
        await registry.aclose()
    assert response.status_code == 200, response.text


async def test_admin_still_runs_shell_tasks(url: str, admin_key: str) -> None:
    response = await _call(
        url, admin_key, "workflow.submit", _workflow("shell", {"command": "true"})
    )
    assert response.status_code == 200, response.text


async def test_operator_runs_template_workflows(url: str, operator_key: str) -> None:
    response = await _call(url, operator_key, "workflow.submit", _workflow("noop", {}))
    assert response.status_code == 200, response.text


async def test_operator_cannot_assign_roles(
    url: str, admin_key: str, operator_key: str, settings: Settings
) -> None:
    created = await _call(url, admin_key, "user.create", {"name": "olga", "roles": ["operator"]})
    assert created.status_code == 200, created.text
    _refused(await _call(url, operator_key, "role.assign", {"user": "olga", "role": "admin"}))
    _refused(await _call(url, operator_key, "user.create", {"name": "eve", "roles": ["admin"]}))
    assert _audited(settings, "role.assign") and _audited(settings, "user.create")


async def test_operator_cannot_mint_or_read_another_users_keys(
    url: str, admin_key: str, operator_key: str
) -> None:
    await _call(url, admin_key, "user.create", {"name": "carl", "roles": ["viewer"]})
    _refused(await _call(url, operator_key, "apikey.create", {"user": "admin"}))
    _refused(await _call(url, operator_key, "apikey.create", {"user": "carl"}))
    _refused(await _call(url, operator_key, "apikey.list", {"user": "carl"}))
    key = (await _call(url, admin_key, "apikey.create", {"user": "carl"})).json()["data"]
    _refused(await _call(url, operator_key, "apikey.revoke", {"key_id": key["key_id"]}))


async def test_operator_servers_in_dev_and_on_prod_only_with_a_second_user(
    url: str, admin_key: str, operator_key: str, settings: Settings
) -> None:
    """Policy example: an operator creates and deletes servers labelled env=dev, asks for
    changes to env=prod ones (held for an approver: `approval_required`, nothing runs),
    and may not touch others (env=lab)."""
    for name, env in (("d-1", "dev"), ("p-1", "prod")):
        registered = await _call(
            url, admin_key, "server.register", {"name": name, "labels": {"env": env}}
        )
        assert registered.status_code == 200, registered.text
    allowed = await _call(url, operator_key, "server.delete", {"names": ["d-1"]})
    assert allowed.status_code == 200, allowed.text
    for names in (["p-1"], ["d-1", "p-1"]):
        held = await _call(url, operator_key, "server.delete", {"names": names})
        assert held.status_code == 202, held.text
        assert held.json()["error"]["code"] == "approval_required"
    listed = await _call(url, admin_key, "ops.list", {"type": "server.delete"})
    assert {op["status"] for op in listed.json()["data"]["ops"]} == {"published", "pending"}
    lab: dict[str, object] = {"config": "examples/lab.ncl", "names": ["lab-1"]}  # env=lab
    _refused(await _call(url, operator_key, "server.create", lab))
    assert _audited(settings, "server.create")


def test_local_cli_acts_as_the_given_key_not_as_admin(
    keystore: KeyStore, admin_key: str, tmp_path: Path
) -> None:
    """`PRVNG_API_KEY` with an in-process CLI call runs as that key's principal."""
    viewer = keystore.create("vic", ["viewer"])
    env = {**environ_snapshot(), "PRVNG_API_KEY": viewer}
    argv = [sys.executable, "-m", "servers.cli", "call", "server.register", "name=v-1"]
    argv += ["--output", "json"]
    done = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 4, done.stderr
    assert json.loads(done.stderr)["error"]["code"] == "forbidden"
