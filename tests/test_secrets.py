"""Secrets: stored 0600 under PRVNG_HOME/secrets/, referenced by name from task params,
resolved only when the action runs; their values reach the command and the HTTP peer,
and nothing else (journal, snapshots, audit, events, views, logs)."""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from daemons.common.secret_store import SecretStore
from daemons.common.settings import Settings
from daemons.orchestrator.actions.secret_refs import SecretRef, SecretResolver
from registry import Principal, Registry
from registry.audit import args_digest
from registry.errors import NotFound


async def _ok(registry: Registry, owner: Principal, tool: str, args: dict[str, Any]) -> Any:
    env = await registry.invoke(tool, args, principal=owner)
    assert env.ok, env.error
    return env.data


@pytest.fixture
def settings(clean_environ: Path, monkeypatch: pytest.MonkeyPatch) -> Settings:
    """The peer listens on loopback, which http tasks reach only when allowed."""
    monkeypatch.setenv("PRVNG_HTTP_ACTION_ALLOW", "127.0.0.1/32")
    return Settings.from_env()


@pytest.fixture
async def peer() -> AsyncIterator[tuple[str, list[str]]]:
    """A real HTTP server on 127.0.0.1:0 that notes each request's Authorization header
    and echoes it back in its body (so the task's result would show it)."""
    seen: list[str] = []

    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = (await reader.readuntil(b"\r\n\r\n")).decode()
        auth = next(
            (
                line.split(":", 1)[1].strip()
                for line in head.split("\r\n")
                if line.lower().startswith("authorization:")
            ),
            "",
        )
        seen.append(auth)
        body = json.dumps({"you_sent": auth}).encode()
        writer.write(
            b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nConnection: close\r\n"
            + b"Content-Length: %d\r\n\r\n" % len(body)
            + body
        )
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(answer, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}", seen
    finally:
        server.close()
        await server.wait_closed()


async def test_secret_values_reach_the_command_and_the_peer_and_nothing_else(
    registry: Registry, owner: Principal, settings: Settings, peer: tuple[str, list[str]]
) -> None:
    password, token = f"pw-{os.urandom(12).hex()}", f"Bearer tok-{os.urandom(12).hex()}"
    await _ok(registry, owner, "secret.set", {"name": "db-password", "value": password})
    await _ok(registry, owner, "secret.set", {"name": "api-token", "value": token})
    url, seen = peer
    command = 'printf %s "$DB_PASSWORD" | sha256sum >seen.txt; echo "leak: $DB_PASSWORD"'
    tasks = [
        {
            "id": "cmd",
            "action": "shell",
            "params": {
                "command": command,
                "env": {"DB_PASSWORD": {"secret": "db-password"}, "APP_SECRET": "inline-1"},
            },
        },
        {
            "id": "call",
            "action": "http",
            "params": {
                "url": f"{url}/echo",
                "headers": {"Authorization": {"secret": "api-token"}, "X-Api-Key": "inline-2"},
            },
        },
    ]
    wf = await _ok(
        registry, owner, "workflow.submit", {"name": "secrets", "tasks": tasks, "wait": True}
    )
    assert wf["state"] == "succeeded", wf

    workspace = settings.home / "work" / wf["id"]
    assert (workspace / "seen.txt").read_text().split()[0] == hashlib.sha256(
        password.encode()
    ).hexdigest()
    assert seen == [token]

    shown = [
        await _ok(registry, owner, "workflow.get", {"id": wf["id"]}),
        await _ok(registry, owner, "task.list", {"workflow_id": wf["id"]}),
        await _ok(registry, owner, "secret.list", {}),
    ]
    for task in ("cmd", "call"):
        for tool in ("task.get", "task.logs"):
            shown.append(
                await _ok(registry, owner, tool, {"workflow_id": wf["id"], "task_id": task})
            )
    text = json.dumps(shown)
    for value in (password, token, "inline-1", "inline-2"):
        assert value not in text
    assert "leak: ***" in text  # the command printed it; the log shows it scrubbed
    assert {s["name"] for s in shown[2]["secrets"]} == {"db-password", "api-token"}
    call = next(t for t in shown[1]["tasks"] if t["id"] == "call")
    assert call["params"]["headers"] == {
        "Authorization": {"secret": "api-token"},
        "X-Api-Key": "[redacted]",
    }

    secrets_dir = settings.home / "secrets"
    assert secrets_dir.stat().st_mode & 0o777 == 0o700
    assert {p.stat().st_mode & 0o777 for p in secrets_dir.iterdir()} == {0o600}
    for path in settings.home.rglob("*"):  # journals, snapshots, audit log, logs, workspace
        if path.is_file() and secrets_dir not in path.parents:
            data = path.read_bytes()
            assert password.encode() not in data and token.encode() not in data, path

    audit = [
        json.loads(line) for line in (settings.logs_dir / "audit.jsonl").read_text().splitlines()
    ]
    sets = [r for r in audit if r["tool"] == "secret.set"]
    assert len(sets) == 2 and all(r["outcome"] == "ok" for r in sets)
    oracle = args_digest({"name": "db-password", "value": password})
    assert oracle not in {r["args_digest"] for r in sets}  # no digest to brute-force


async def test_a_missing_secret_fails_the_task_for_good_naming_it(
    registry: Registry, owner: Principal
) -> None:
    task = {
        "id": "t",
        "action": "shell",
        "params": {"command": "true", "env": {"X": {"secret": "nope"}}},
        "retry": {"max_attempts": 3, "backoff_s": 0},
    }
    body = {"name": "s", "tasks": [task], "wait": True}
    failed = await registry.invoke("workflow.submit", body, principal=owner)
    assert failed.error is not None and failed.error["code"] == "workflow_failed"
    wf = failed.error["details"]
    assert wf["state"] in ("failed", "rolled_back")
    view = await _ok(registry, owner, "task.get", {"workflow_id": wf["id"], "task_id": "t"})
    assert view["attempts"] == 1 and "secret 'nope' is not set" in view["error"]


def test_a_value_split_across_log_chunks_is_still_masked(settings: Settings) -> None:
    SecretStore(settings).set("k", "abcdef")
    resolver = SecretResolver(settings)
    assert resolver.value(SecretRef(secret="k")) == "abcdef"
    lines: list[tuple[str, str]] = []
    log = resolver.log(lambda stream, text: lines.append((stream, text)))
    for chunk in ("x=ab", "cd", "ef; y=abc", "def\n", "tail ab"):
        log("stdout", chunk)
    log.flush()
    text = "".join(t for _, t in lines)
    assert text == "x=***; y=***\ntail ab" and "abcdef" not in text


def test_secret_files_are_private_and_listing_shows_no_value(settings: Settings) -> None:
    store = SecretStore(settings)
    _, created = store.set("a", "v1")
    assert created and not store.set("a", "v2")[1]
    assert store.get("a") == "v2" and [s.name for s in store.list()] == ["a"]
    assert "v2" not in repr(store.list())
    store.delete("a")
    with pytest.raises(NotFound, match="not set"):
        store.get("a")
