"""PRVNG_HOME under a permissive umask and planted symlinks: every platform directory is
0700, no symlink inside PRVNG_HOME is followed, and server.delete signals only processes
the provider itself started."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from daemons.common.files import PrivateChildren, UnsafePath, pid_alive, private_dir
from daemons.common.keystore import KeyStore
from daemons.common.settings import Settings
from daemons.common.state import StateStore
from daemons.orchestrator.actions import ActionContext, ActionError
from daemons.orchestrator.provisioning.providers.local import LocalProvider
from daemons.orchestrator.provisioning.server_actions import (
    ServerCreate,
    ServerCreateParams,
    ServerDelete,
    ServerDeleteParams,
)
from orchestrator.conftest import ContextFactory, StartOrchestrator
from orchestrator.helpers import spec


@pytest.fixture
def umask_002() -> Iterator[None]:
    previous = os.umask(0o002)
    try:
        yield
    finally:
        os.umask(previous)


@pytest.fixture
def ctx(action_context: ContextFactory) -> ActionContext:
    return action_context("create.web-1")


@pytest.fixture
def sleepers(settings: Settings, tmp_path: Path) -> Iterator[list[subprocess.Popen[bytes]]]:
    """`sleep 60` in a planted target, in a real sandbox's path and elsewhere, with the old
    sandbox marker: processes the provider never started."""
    target, sandbox = tmp_path / "elsewhere", settings.servers_dir / "web-1"
    target.mkdir()
    private_dir(sandbox, home=settings.home)
    env = {"PATH": os.defpath, "PRVNG_SANDBOX": str(sandbox)}
    procs = [
        subprocess.Popen(["sleep", "60"], cwd=cwd, env=env) for cwd in (target, sandbox, tmp_path)
    ]
    try:
        yield procs
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
            proc.wait()


def _tree(root: Path) -> dict[str, tuple[int, bytes | None]]:
    """Every entry under `root`: its mode and (for files) its content."""
    found = {}
    for path in sorted(root.rglob("*")):
        content = path.read_bytes() if path.is_file() else None
        found[str(path.relative_to(root))] = (path.lstat().st_mode, content)
    return found


async def test_every_platform_directory_is_private_whatever_the_umask(
    umask_002: None,
    settings: Settings,
    store: StateStore,
    ctx: ActionContext,
    start_orchestrator: StartOrchestrator,
) -> None:
    KeyStore(settings).owner()  # credentials/, keys/
    orch = await start_orchestrator()  # journal/
    done = await orch.submit(spec({"id": "a", "action": "noop"}))
    assert (await orch.wait(done.id, 10)).state == "succeeded"  # work/<id>/
    await LocalProvider(settings, store).create_server("web-1", {}, ctx)  # servers/web-1/...
    private_dir(settings.logs_dir, home=settings.home)
    dirs = [settings.home, *(p for p in settings.home.rglob("*") if p.is_dir())]
    assert {settings.servers_dir, settings.home / "work", settings.journal_dir} <= set(dirs)
    loose = {str(d): oct(d.stat().st_mode & 0o777) for d in dirs if d.stat().st_mode & 0o077}
    assert loose == {}


def test_workspaces_are_private_never_links_and_made_again_when_their_parent_went(
    umask_002: None, settings: Settings, tmp_path: Path
) -> None:
    work = settings.home / "work"
    workspaces = PrivateChildren(work, home=settings.home)
    made = workspaces.make("wf-1")
    assert made == work / "wf-1" and made.stat().st_mode & 0o777 == 0o700
    target = tmp_path / "elsewhere"
    target.mkdir(mode=0o755)
    (work / "wf-2").symlink_to(target)
    with pytest.raises(UnsafePath):
        workspaces.make("wf-2")
    assert target.stat().st_mode & 0o777 == 0o755 and list(target.iterdir()) == []
    (made).rmdir()
    work.rename(tmp_path / "moved")  # the parent went away after it was checked
    assert workspaces.make("wf-3").is_dir() and work.stat().st_mode & 0o777 == 0o700
    work.rename(tmp_path / "moved-again")
    work.symlink_to(target)  # and a link stands where it was
    with pytest.raises(UnsafePath):
        workspaces.make("wf-4")
    assert list(target.iterdir()) == []


async def test_a_symlink_planted_as_a_sandbox_is_refused_and_its_target_untouched(
    settings: Settings, store: StateStore, ctx: ActionContext, tmp_path: Path
) -> None:
    target = tmp_path / "elsewhere"
    target.mkdir(mode=0o755)
    (target / "keep.txt").write_text("not yours\n")
    before = _tree(target)
    private_dir(settings.servers_dir, home=settings.home)
    (settings.servers_dir / "web-1").symlink_to(target)

    with pytest.raises(ActionError) as refused:
        await ServerCreate().run(ServerCreateParams(name="web-1"), ctx)
    assert str(settings.servers_dir / "web-1") in refused.value.message
    assert "symlink" in refused.value.message
    assert refused.value.details["code"] == "conflict" and not refused.value.retryable
    assert _tree(target) == before
    assert target.stat().st_mode & 0o777 == 0o755


async def test_delete_never_signals_a_process_the_provider_did_not_start(
    settings: Settings,
    store: StateStore,
    ctx: ActionContext,
    tmp_path: Path,
    sleepers: list[subprocess.Popen[bytes]],
) -> None:
    target, sandbox = tmp_path / "elsewhere", settings.servers_dir / "web-1"
    (settings.servers_dir / "web-2").symlink_to(target)
    await LocalProvider(settings, store).create_server("web-1", {}, ctx)

    for name in ("web-2", "web-1"):
        try:
            await ServerDelete().run(ServerDeleteParams(name=name), ctx)
        except ActionError as exc:
            assert name == "web-2" and "symlink" in exc.message
    assert all(pid_alive(proc.pid) for proc in sleepers)
    assert target.is_dir() and not sandbox.exists()
