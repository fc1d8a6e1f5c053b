"""`workflow.diagnose` on real failing workflows: each known failure is produced for real
(a port held by this test, a missing command, a 0400 file, a timeout, /dev/full, a
closed port, a taskserv whose health check fails) and recognised, with a next command
that is a real `prvng` command line; raw-exec workflows are diagnosed for their owner
and admins only."""

from __future__ import annotations

import shlex
import shutil
import socket
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest

from daemons.common.keystore import KeyStore
from daemons.common.settings import PROJECT_ROOT, Settings
from registry import Principal, Registry
from servers.assembly import build_registry

PY = "python3"
"""The system Python: tasks run unprivileged, and may not reach this venv's."""


async def _failed(registry: Registry, owner: Principal, wf_id: str, task: dict[str, Any]) -> None:
    task = {"id": "t", "retry": {"max_attempts": 1}, **task}
    env = await registry.invoke(
        "workflow.submit",
        {"id": wf_id, "name": wf_id, "tasks": [task], "wait": True},
        principal=owner,
    )
    assert env.code == "workflow_failed", env


async def _diagnosis(registry: Registry, who: Principal, wf_id: str) -> dict[str, Any]:
    env = await registry.invoke("workflow.diagnose", {"workflow_id": wf_id}, principal=who)
    assert env.ok, env.error
    [diagnosis] = env.data["diagnoses"]
    assert diagnosis["next_command"].startswith("prvng ")
    return dict(diagnosis)


def _shell(command: str, **fields: Any) -> dict[str, Any]:
    return {"action": "shell", "params": {"command": command}, **fields}


@pytest.fixture
def held_port() -> Iterator[int]:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        yield sock.getsockname()[1]


@pytest.fixture
def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def test_a_port_in_use(registry: Registry, owner: Principal, held_port: int) -> None:
    code = f"import socket; socket.socket().bind(('127.0.0.1', {held_port}))"
    await _failed(registry, owner, "dg-port", _shell(f"{PY} -c {shlex.quote(code)}"))
    found = await _diagnosis(registry, owner, "dg-port")
    assert found["pattern"] == "port-in-use"
    assert "Address already in use" in found["evidence"]
    assert found["next_command"] == "prvng workflow retry --id dg-port"


async def test_a_command_not_found(registry: Registry, owner: Principal) -> None:
    await _failed(registry, owner, "dg-cnf", _shell("prvng-no-such-tool --version"))
    found = await _diagnosis(registry, owner, "dg-cnf")
    assert found["pattern"] == "command-not-found"
    assert "prvng-no-such-tool" in found["cause"]
    assert found["next_command"] == "prvng task get --workflow-id dg-cnf --task-id t"


async def test_a_missing_python_module(registry: Registry, owner: Principal) -> None:
    await _failed(registry, owner, "dg-mod", _shell(f"{PY} -c 'import prvng_no_such_module'"))
    found = await _diagnosis(registry, owner, "dg-mod")
    assert (found["pattern"], found["cause"].rsplit(": ", 1)[1]) == (
        "command-not-found",
        "prvng_no_such_module",
    )


async def test_permission_denied_on_a_read_only_file(
    registry: Registry, owner: Principal, tmp_path: Path
) -> None:
    locked = tmp_path / "locked.txt"
    locked.write_text("keep\n")
    locked.chmod(0o400)
    tmp_path.chmod(0o755)  # the task's user may reach it, not write it
    await _failed(registry, owner, "dg-perm", _shell(f"echo more >> {locked}"))
    found = await _diagnosis(registry, owner, "dg-perm")
    assert found["pattern"] == "permission-denied"
    assert str(locked) in found["cause"]
    assert locked.read_text() == "keep\n"


async def test_a_timeout(registry: Registry, owner: Principal) -> None:
    await _failed(registry, owner, "dg-slow", _shell("sleep 30", timeout_s=0.3))
    found = await _diagnosis(registry, owner, "dg-slow")
    assert found["pattern"] == "timeout"
    assert "0.3s" in found["cause"]


async def test_a_full_disk(registry: Registry, owner: Principal) -> None:
    if not Path("/dev/full").exists():
        pytest.skip("no /dev/full on this system")
    await _failed(registry, owner, "dg-full", _shell("dd if=/dev/zero of=/dev/full bs=1 count=1"))
    found = await _diagnosis(registry, owner, "dg-full")
    assert (found["pattern"], found["next_command"]) == ("disk-full", "prvng platform health")


async def test_a_refused_connection(registry: Registry, owner: Principal, closed_port: int) -> None:
    code = f"import socket; socket.create_connection(('127.0.0.1', {closed_port}))"
    await _failed(registry, owner, "dg-conn", _shell(f"{PY} -c {shlex.quote(code)}"))
    found = await _diagnosis(registry, owner, "dg-conn")
    assert found["pattern"] == "connection-refused"


async def test_an_unknown_failure_points_at_the_logs(registry: Registry, owner: Principal) -> None:
    await _failed(registry, owner, "dg-odd", _shell("echo 'the frobnicator sulks' >&2; exit 3"))
    found = await _diagnosis(registry, owner, "dg-odd")
    assert found["pattern"] == "unknown"
    assert found["next_command"] == "prvng task logs --workflow-id dg-odd --task-id t --tail 50"


async def test_a_succeeded_workflow_has_nothing_to_diagnose(
    registry: Registry, owner: Principal
) -> None:
    args = {"id": "dg-fine", "name": "dg-fine", "tasks": [{"id": "a", "action": "noop"}]}
    assert (await registry.invoke("workflow.submit", {**args, "wait": True}, principal=owner)).ok
    env = await registry.invoke("workflow.diagnose", {"workflow_id": "dg-fine"}, principal=owner)
    assert env.data == {"workflow_id": "dg-fine", "state": "succeeded", "diagnoses": []}


_SICK = """{
  name = "sick",
  description = "Installs fine, never healthy",
  version = "1.0.0",
  settings = {},
  health = { kind = 'command, command = "echo not yet >&2; exit 1", timeout_s = 0.2 },
}
"""


@pytest.fixture
async def sick_workspace(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, clean_environ: Path
) -> AsyncIterator[tuple[Registry, Principal]]:
    """A registry on a workspace with a taskserv whose health check always fails."""
    ws = tmp_path / "ws"
    shutil.copytree(PROJECT_ROOT / "config" / "schemas", ws / "schemas")
    entry = ws / "taskservs" / "sick"
    entry.mkdir(parents=True)
    (entry / "taskserv.ncl").write_text(_SICK)
    for script in ("install.sh", "remove.sh"):
        (entry / script).write_text("#!/bin/sh\necho ok\n")
        (entry / script).chmod(0o755)
    (ws / "sick.ncl").write_text(
        'let s = import "schemas/server.ncl" in\n'
        '{ name = "sick", servers = [{ name = "sick-1", labels = { env = "dev" }, '
        'taskservs = [{ name = "sick" }] }] } | s.Workspace\n'
    )
    monkeypatch.setenv("PRVNG_CONFIG", str(ws))
    settings = Settings.from_env()
    keystore = KeyStore(settings)
    registry = build_registry(settings, keystore=keystore)
    try:
        yield registry, keystore.owner()
    finally:
        await registry.aclose()


async def test_a_failing_health_check(sick_workspace: tuple[Registry, Principal]) -> None:
    registry, owner = sick_workspace
    args = {"config": "sick.ncl", "id": "dg-sick", "wait": True}
    env = await registry.invoke("server.create", args, principal=owner)
    assert env.code == "workflow_failed", env
    found = await _diagnosis(registry, owner, "dg-sick")
    assert found["task_id"] == "install.sick-1.sick"
    assert found["pattern"] == "health-check-failing"
    assert found["next_command"] == "prvng server refresh --names sick-1"


async def test_only_owner_and_admins_diagnose_raw_execution(
    registry: Registry, owner: Principal, keystore: KeyStore
) -> None:
    await _failed(registry, owner, "dg-own", _shell("prvng-no-such-tool"))
    operator = keystore.create("olga", ["operator"])
    viewer = keystore.create("vic", ["viewer"])
    args = {"workflow_id": "dg-own"}
    for key in (operator, viewer):
        env = await registry.invoke("workflow.diagnose", args, credential=key)
        assert env.code == "forbidden", env
        logs = await registry.invoke("task.logs", {**args, "task_id": "t"}, credential=key)
        assert logs.code == "forbidden"  # the same read path decides alike
    mine = {"id": "dg-olga", "name": "dg-olga", "tasks": [{"id": "a", "action": "noop"}]}
    assert (
        await registry.invoke("workflow.submit", {**mine, "wait": True}, credential=operator)
    ).ok
    env = await registry.invoke(
        "workflow.diagnose", {"workflow_id": "dg-olga"}, credential=operator
    )
    assert env.ok and env.data["state"] == "succeeded"
