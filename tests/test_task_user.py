"""Tasks run as an unprivileged user when the platform runs as root.

The finding: as root, an admin's (or an AI's) shell task reads every credential under
PRVNG_HOME. Now it runs as PRVNG_TASK_USER (default `nobody`): the key stays unreadable,
the workspace stays writable. Not root: nothing to drop, tasks run as the platform user.
"""

from __future__ import annotations

import os
import pwd
from pathlib import Path
from typing import Any

import pytest

from daemons.common.settings import Settings
from daemons.orchestrator.engine.service import Orchestrator
from registry import InvalidInput, Principal, Registry

as_root = pytest.mark.skipif(os.geteuid() != 0, reason="needs root: there is nothing to drop")


async def _run(registry: Registry, owner: Principal, wf_id: str, command: str) -> Any:
    task = {"id": "t", "action": "shell", "params": {"command": command}}
    args = {"id": wf_id, "name": wf_id, "tasks": [task], "wait": True}
    return await registry.invoke("workflow.submit", args, principal=owner)


async def _printed(registry: Registry, owner: Principal, wf_id: str) -> list[str]:
    args = {"workflow_id": wf_id, "task_id": "t"}
    logs = await registry.invoke("task.logs", args, principal=owner)
    return [line["text"] for line in logs.data["lines"] if line["stream"] != "info"]


@as_root
async def test_a_root_platforms_shell_task_cannot_read_the_admin_key(
    registry: Registry, owner: Principal, settings: Settings, admin_key: str
) -> None:
    stolen = await _run(registry, owner, "steal", f"cat {settings.admin_key_file}")
    assert stolen.code == "workflow_failed", stolen.data
    printed = await _printed(registry, owner, "steal")
    assert any("Permission denied" in text for text in printed), printed
    assert not any(admin_key in text for text in printed)
    for private in (settings.home, settings.credentials_dir):
        st = private.stat()
        assert (st.st_uid, st.st_mode & 0o777) == (0, 0o700), private


@as_root
async def test_a_root_platforms_shell_task_runs_as_the_task_user(
    registry: Registry, owner: Principal
) -> None:
    nobody = pwd.getpwnam("nobody")
    done = await _run(registry, owner, "who", "id -u; id -g; id -G; echo kept > f && cat f")
    assert done.ok, done.data
    expected = [str(nobody.pw_uid), str(nobody.pw_gid), str(nobody.pw_gid), "kept"]
    assert await _printed(registry, owner, "who") == expected


@as_root
async def test_a_missing_task_user_stops_the_start(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PRVNG_TASK_USER", "no-such-user-here")
    with pytest.raises(InvalidInput, match="PRVNG_TASK_USER='no-such-user-here'"):
        await Orchestrator(Settings.from_env()).start()
    monkeypatch.setenv("PRVNG_TASK_USER", "root")
    with pytest.raises(InvalidInput, match="uid/gid 0"):
        await Orchestrator(Settings.from_env()).start()


@pytest.mark.skipif(os.geteuid() == 0, reason="as root tasks run as the task user")
async def test_not_root_tasks_run_as_the_platform_user(
    registry: Registry, owner: Principal, tmp_path: Path
) -> None:
    done = await _run(registry, owner, "me", "id -u")
    assert done.ok, done.data
    assert await _printed(registry, owner, "me") == [str(os.geteuid())]
