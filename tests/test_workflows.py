"""Workflows through the tiers: SSE progress, MCP progress, the platform's engine, split
mode against the orchestrator daemon, kill -9 of the whole platform, real taskservs."""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastmcp import Client
from subprocesses import read_ready_line

from daemons.common.keystore import KeyStore
from daemons.common.settings import PROJECT_ROOT, Settings
from daemons.orchestrator.serving.token import orchestrator_token
from registry import Principal, Registry
from servers.assembly import build_registry
from servers.mcp import build_mcp
from servers.runfile import read_run_file
from servers.supervisor import serve
from tests.subprocesses import reap
from tests.waiting import until

PRVNG = str(Path(sys.executable).with_name("prvng"))


def _workflow(wf_id: str, *tasks: dict[str, Any], wait: bool = True) -> dict[str, Any]:
    return {"id": wf_id, "name": wf_id, "tasks": list(tasks), "wait": wait}


def _noop(task_id: str, *deps: str) -> dict[str, Any]:
    return {"id": task_id, "action": "noop", "depends_on": list(deps)}


async def test_events_stream_over_sse(
    registry: Registry, settings: Settings, admin_key: str
) -> None:
    auth = {"Authorization": f"Bearer {admin_key}"}
    async with serve(registry, settings) as url, httpx.AsyncClient(base_url=url, headers=auth) as c:
        async with httpx.AsyncClient(base_url=url) as anonymous:
            assert (await anonymous.get("/events")).status_code == 401
        body = _workflow("sse-1", _noop("a"), _noop("b", "a"))
        done = (await c.post("/v1/tools/workflow.submit", json=body)).json()
        assert done["data"]["state"] == "succeeded", done
        seen: list[dict[str, Any]] = []
        async with c.stream("GET", "/events", params={"since": 0, "workflow_id": "sse-1"}) as s:
            assert s.headers["content-type"].startswith("text/event-stream")
            event_id = None
            async for line in s.aiter_lines():
                if line.startswith("id: "):
                    event_id = int(line[4:])
                elif line.startswith("data: "):
                    event = json.loads(line[6:])
                    assert event["seq"] == event_id
                    seen.append(event)
                    if event["kind"] == "workflow" and event["state"] == "succeeded":
                        break
        tasks = [(e["task_id"], e["state"]) for e in seen if e["kind"] == "task"]
        assert tasks == [("a", "running"), ("a", "succeeded"), ("b", "running"), ("b", "succeeded")]
        bad = await c.get("/events", params={"since": "yesterday"})
        assert bad.status_code == 422


async def test_mcp_client_gets_progress_while_it_waits(
    registry: Registry, owner: Principal
) -> None:
    updates: list[tuple[float, float | None]] = []

    async def on_progress(progress: float, total: float | None, message: str | None) -> None:
        updates.append((progress, total))

    async with Client(build_mcp(registry, principal=owner)) as client:
        body = _workflow("mcp-1", _noop("a"), _noop("b", "a"), _noop("c", "a"))
        result = await client.call_tool("workflow.submit", body, progress_handler=on_progress)
    assert result.structured_content is not None
    assert result.structured_content["state"] == "succeeded"
    assert updates and updates[-1] == (3, 3)
    assert [p for p, _ in updates] == sorted(p for p, _ in updates)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def web_workspace(tmp_path: Path) -> tuple[Path, int]:
    """A workspace of its own with static-web on a free port (taskservs from the bundle)."""
    port = _free_port()
    ws = tmp_path / "ws"
    ws.mkdir()
    (ws / "schemas").mkdir()
    schema = (PROJECT_ROOT / "config" / "schemas" / "server.ncl").read_text()
    (ws / "schemas" / "server.ncl").write_text(schema)  # imports stay inside the workspace
    (ws / "workspace.ncl").write_text(
        'let s = import "schemas/server.ncl" in\n'
        '{ name = "web", servers = [{ name = "web-1", taskservs = '
        f'[{{ name = "static-web", port = {port} }}] }}] }} | s.Workspace\n'
    )
    return ws, port


async def test_server_create_installs_a_taskserv_that_answers(
    settings: Settings, keystore: KeyStore, owner: Principal, web_workspace: tuple[Path, int]
) -> None:
    ws, port = web_workspace
    local = dataclasses.replace(settings, config_dir=ws)
    async with build_registry(local, keystore=keystore) as registry:
        created = await registry.invoke("server.create", {"wait": True}, principal=owner)
        assert created.ok and created.data["state"] == "succeeded", created.to_dict()
        try:
            async with httpx.AsyncClient() as http:
                page = await http.get(f"http://127.0.0.1:{port}/")
            assert page.status_code == 200
            server = (await registry.invoke("server.get", {"name": "web-1"}, principal=owner)).data
            assert server["status"] == "running"
            assert [(t["name"], t["status"]) for t in server["taskservs"]] == [
                ("static-web", "running")
            ]
            assert Path(server["sandbox"]).is_dir()
        finally:
            deleted = await registry.invoke(
                "server.delete", {"names": ["web-1"], "wait": True}, principal=owner
            )
        assert deleted.data["state"] == "succeeded", deleted.to_dict()
    with socket.socket() as probe:
        assert probe.connect_ex(("127.0.0.1", port)) != 0, "static-web still listens"


def _closed(port: int) -> bool:
    with socket.socket() as probe:
        return probe.connect_ex(("127.0.0.1", port)) != 0


async def test_refresh_reports_a_killed_taskserv_and_create_converges_it_back(
    settings: Settings, keystore: KeyStore, owner: Principal, web_workspace: tuple[Path, int]
) -> None:
    ws, port = web_workspace
    local = dataclasses.replace(settings, config_dir=ws)
    async with build_registry(local, keystore=keystore) as registry:

        async def call(tool: str, **args: Any) -> Any:
            env = await registry.invoke(tool, args, principal=owner)
            assert env.ok, env.to_dict()
            return env.data

        assert (await call("server.create", wait=True))["state"] == "succeeded"
        try:
            healthy = await call("server.refresh")
            assert healthy["drift"] == [] and healthy["servers"][0]["taskservs"] == {
                "static-web": "running"
            }
            sandbox = Path((await call("server.get", name="web-1"))["sandbox"])
            os.kill(int((sandbox / "run" / "static-web.pid").read_text()), signal.SIGKILL)
            await until(lambda: _closed(port), what=f"port {port} closed", within_s=10)

            drifted = await call("server.refresh", names=["web-1"])
            [drift] = drifted["drift"]
            assert (drift["server"], drift["taskserv"]) == ("web-1", "static-web")
            assert (drift["recorded"], drift["observed"]) == ("running", "down")
            assert f"127.0.0.1:{port}" in drift["detail"]
            [entry] = (await call("server.get", name="web-1"))["taskservs"]
            assert entry["status"] == "down" and entry["checked_at"] is not None
            [listed] = (await call("taskserv.list", server="web-1"))["installed"]
            assert (listed["status"], listed["checked_at"]) == ("down", entry["checked_at"])

            assert (await call("server.create", wait=True))["state"] == "succeeded"
            async with httpx.AsyncClient() as http:
                assert (await http.get(f"http://127.0.0.1:{port}/")).status_code == 200
            back = await call("server.refresh")
            assert back["drift"] == [] and back["servers"][0]["taskservs"] == {
                "static-web": "running"
            }
        finally:
            await call("server.delete", names=["web-1"], wait=True)


def _prvng(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [PRVNG, *args], capture_output=True, text=True, timeout=120, check=False, env=env
    )


def test_in_process_cli_runs_its_workflow_to_the_end() -> None:
    # The first task outlasts the submission (which now waits for the controller's dispatch).
    first = {"id": "a", "action": "sleep", "params": {"seconds": 1}}
    body = json.dumps({"id": "cli-1", "name": "cli", "tasks": [first, _noop("b", "a")]})
    submitted = _prvng("workflow", "submit", "--json", body)
    assert submitted.returncode == 0, submitted.stderr
    assert json.loads(submitted.stdout)["state"] in {"pending", "running"}
    assert "running workflow cli-1" in submitted.stderr
    after = _prvng("workflow", "get", "--id", "cli-1")
    assert after.returncode == 0, after.stderr
    assert json.loads(after.stdout)["state"] == "succeeded"


@pytest.fixture
def spawn(tmp_path: Path) -> Iterator[Any]:
    """Start long-running processes; every one is killed at teardown."""
    procs: list[subprocess.Popen[str]] = []

    def start(argv: list[str], env: dict[str, str]) -> subprocess.Popen[str]:
        with (tmp_path / f"proc-{len(procs)}.log").open("w") as log:
            proc = subprocess.Popen(argv, env=env, stdout=subprocess.PIPE, stderr=log, text=True)
        procs.append(proc)
        return proc

    yield start
    for proc in procs:
        reap(proc)


def test_split_mode_talks_to_the_orchestrator_daemon(spawn: Any) -> None:
    env = dict(os.environ)
    daemon = spawn([PRVNG, "daemon", "orchestrator", "--port", "0"], env)
    line = read_ready_line(daemon)
    assert line.startswith("orchestrator ready on http://127.0.0.1:"), line
    url = line.split()[3]
    client_env = {**env, "PRVNG_ORCHESTRATOR_URL": url}
    body = json.dumps({**_workflow("split-1", _noop("a")), "wait": True})
    done = _prvng("call", "workflow.submit", "--json", body, env=client_env)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["state"] == "succeeded"
    # The daemon holds the journal: the workflow is there, not in this home's own engine.
    token = orchestrator_token(Settings.from_env())
    listed = httpx.get(f"{url}/v1/workflows/split-1", headers={"Authorization": f"Bearer {token}"})
    assert listed.json()["data"]["state"] == "succeeded"
    daemon.send_signal(signal.SIGTERM)
    assert daemon.wait(timeout=30) == 0


def test_kill_9_of_the_platform_and_a_restart_finish_the_workflow(
    spawn: Any, settings: Settings
) -> None:
    env = {k: v for k, v in os.environ.items() if k != "PRVNG_SURREAL_URL"}  # on disk
    platform = spawn([PRVNG, "platform", "start", "--port", "0"], env)
    assert "platform ready at" in read_ready_line(platform)
    tasks = [{"id": "slow", "action": "sleep", "params": {"seconds": 3}}]
    tasks += [{"id": f"t{i}", "action": "noop", "depends_on": ["slow"]} for i in range(10)]
    body = json.dumps({"id": "k9", "name": "k9", "tasks": tasks})
    assert _prvng("call", "workflow.submit", "--json", body, env=env).returncode == 0
    running = json.loads(_prvng("workflow", "get", "--id", "k9", env=env).stdout)
    assert running["state"] == "running"
    platform.kill()
    platform.wait()
    assert read_run_file(settings.run_file) is None  # the pid is gone, the file is stale

    again = spawn([PRVNG, "platform", "start", "--port", "0"], env)
    assert "platform ready at" in read_ready_line(again)
    waited = _prvng("workflow", "wait", "--id", "k9", "--timeout-s", "60", env=env)
    assert waited.returncode == 0, waited.stderr
    final = json.loads(waited.stdout)
    assert final["state"] == "succeeded" and final["task_counts"] == {"succeeded": 11}
    again.send_signal(signal.SIGTERM)
    assert again.wait(timeout=30) == 0


def test_a_waiting_remote_call_shows_progress_on_a_terminal(spawn: Any) -> None:
    import pty

    env = dict(os.environ)
    platform = spawn([PRVNG, "platform", "start", "--port", "0"], env)
    assert "platform ready at" in read_ready_line(platform)
    body = json.dumps({"name": "tty", "tasks": [_noop("a"), _noop("b", "a")], "wait": True})
    controller, terminal = pty.openpty()
    try:
        done = subprocess.run(
            [PRVNG, "workflow", "submit", "--json", body],
            stderr=terminal,
            capture_output=False,
            stdout=subprocess.PIPE,
            text=True,
            timeout=60,
            check=False,
        )
        os.close(terminal)
        shown = b""
        with contextlib.suppress(OSError):  # EIO once everything written is read
            while chunk := os.read(controller, 4096):
                shown += chunk
    finally:
        os.close(controller)
    assert done.returncode == 0
    view = json.loads(done.stdout)
    assert view["state"] == "succeeded" and view["id"].startswith("cli-")
    lines = shown.decode().splitlines()
    assert "progress: [1 done] a succeeded" in lines
    assert "progress: [2 done] b succeeded" in lines


async def test_platform_health_reports_the_engine_once_it_runs(
    registry: Registry, owner: Principal
) -> None:
    before = await registry.invoke("platform.health", {}, principal=owner)
    assert before.data["components"]["orchestrator"]["detail"] == "starts on first use"
    await registry.invoke("workflow.submit", _workflow("h-1", _noop("a")), principal=owner)
    after = await registry.invoke("platform.health", {}, principal=owner)
    assert after.data["components"]["orchestrator"] == {
        "ready": True,
        "detail": "0 active of 1 workflows",
    }
