"""A full disk stops the journal only for a while: new work is refused with `unavailable`,
reads and acknowledged work go on, nothing torn stays on disk, and it recovers by itself.

The disk is a real one with a switch (the engine's `Disk` seam), not a mock of the engine:
while `full`, it writes `room` more bytes (a short write) and then answers `ENOSPC`.
"""

from __future__ import annotations

import errno
import os
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from daemons.common.settings import Settings
from daemons.orchestrator.durability.disk import write_all
from daemons.orchestrator.durability.journal import JournalFile, decode, encode
from daemons.orchestrator.protocol import OrchestratorHandle
from orchestrator.conftest import StartOrchestrator
from orchestrator.helpers import marker_lines, spec, workspace
from registry import Principal, Registry
from tests.waiting import until

FAST_RETRY = (0.01, 0.05)


class SwitchDisk:
    """The real disk until `fill()`; then `room` more bytes fit, after which every write
    fails with `ENOSPC`, until `free()`."""

    def __init__(self) -> None:
        self.full = False
        self.room = 0
        self.refused = 0

    def fill(self, room: int = 0) -> None:
        self.full, self.room = True, room

    def free(self) -> None:
        self.full = False

    def write(self, fd: int, data: memoryview) -> int:
        if self.full:
            if self.room <= 0:
                self.refused += 1
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
            data = data[: self.room]
            self.room -= len(data)
        return os.write(fd, data)

    def fsync(self, fd: int) -> None:
        os.fsync(fd)

    def fdatasync(self, fd: int) -> None:
        os.fdatasync(fd)


class ShortWriteDisk(SwitchDisk):
    """Writes at most 7 bytes a call, as `os.write` may."""

    def write(self, fd: int, data: memoryview) -> int:
        return os.write(fd, data[:7])


def assert_no_torn_record(journal_dir: Path) -> None:
    """Every journal file holds whole, intact lines only (nothing for recovery to cut)."""
    for path in journal_dir.glob("*.journal"):
        data = path.read_bytes()
        assert not data or data.endswith(b"\n"), f"{path.name} ends mid-record"
        for line in data.splitlines():
            assert decode(line) is not None, f"{path.name} holds a damaged record"


def _slow_then_next(marker: str) -> list[dict[str, Any]]:
    hold = {"marker": marker, "hold_s": 0.5}
    return [
        {"id": "a", "action": "flaky", "params": hold},
        {"id": "b", "action": "flaky", "params": {"marker": marker}, "depends_on": ["a"]},
    ]


@pytest.fixture
def disk() -> SwitchDisk:
    return SwitchDisk()


@pytest.fixture
async def on_registry(
    registry: Registry, owner: Principal, start_orchestrator: StartOrchestrator, disk: SwitchDisk
) -> Callable[..., Awaitable[Any]]:
    """Calls through the registry (as every tier does) to an engine on `disk`."""
    orch = await start_orchestrator(disk=disk, retry_s=FAST_RETRY)
    registry.resources.put(OrchestratorHandle, OrchestratorHandle(orch, "in process", orch.health))

    async def call(tool: str, **args: Any) -> Any:
        return await registry.invoke(tool, args, principal=owner)

    return call


async def _task_state(call: Callable[..., Awaitable[Any]], wf_id: str, task: str) -> str:
    env = await call("task.get", workflow_id=wf_id, task_id=task)
    assert env.ok, env.error
    return str(env.data["state"])


async def test_a_full_disk_refuses_new_work_keeps_reads_and_recovers_by_itself(
    on_registry: Callable[..., Awaitable[Any]], disk: SwitchDisk, settings: Settings
) -> None:
    call = on_registry
    before = await call("workflow.submit", id="before", name="before", tasks=_slow_then_next("m"))
    assert before.ok, before.error
    await until(lambda: _is(call, "before", "a", "running"), what="task a running")

    disk.fill(room=10)  # the next write gets 10 bytes in, then the disk is full
    during = await call("workflow.submit", id="during", name="during", tasks=_slow_then_next("d"))
    assert not during.ok and during.error["code"] == "unavailable"
    message = during.error["message"]
    assert f"the disk is full at {settings.journal_dir}" in message
    assert "Free space" in message and "retries" in message
    refused = await call("workflow.submit", name="later", tasks=_slow_then_next("l"))
    assert refused.error["code"] == "unavailable"  # refused at once, nothing journaled
    assert (await call("workflow.retry", id="before", wait=False)).error["code"] == "unavailable"

    health = (await call("platform.health")).data
    assert health["status"] == "degraded"
    orchestrator = health["components"]["orchestrator"]
    assert not orchestrator["ready"]
    assert orchestrator["detail"].startswith("journal outage: the disk is full at")
    assert_no_torn_record(settings.journal_dir)
    assert not JournalFile(settings.journal_dir, "during").path.exists()

    # Reads go on; the acknowledged workflow's running task finishes, nothing new starts.
    assert (await call("workflow.get", id="before")).ok
    assert (await call("workflow.get", id="during")).error["code"] == "not_found"
    await until(lambda: _is(call, "before", "a", "succeeded"), what="task a succeeded")
    assert await _task_state(call, "before", "b") != "running"
    assert disk.refused > 0

    disk.free()
    await until(lambda: _healthy(call), what="the orchestrator healthy again")
    after = await call("workflow.submit", id="after", name="after", tasks=_slow_then_next("n"))
    assert after.ok, after.error
    done = await call("workflow.wait", id="before", timeout_s=30)
    assert done.ok and done.data["state"] == "succeeded", done
    assert [row[:2] for row in marker_lines(workspace(settings, "before") / "m")] == [
        ("a", 1),
        ("b", 1),
    ]  # each task ran exactly once
    assert not workspace(settings, "during").exists()  # the refused one never ran


async def _is(call: Callable[..., Awaitable[Any]], wf_id: str, task: str, state: str) -> bool:
    return await _task_state(call, wf_id, task) == state


async def _healthy(call: Callable[..., Awaitable[Any]]) -> bool:
    return bool((await call("platform.health")).data["components"]["orchestrator"]["ready"])


@pytest.mark.parametrize("stop_while_full", [False, True])
async def test_a_restart_after_an_outage_recovers_every_acknowledged_workflow(
    start_orchestrator: StartOrchestrator, settings: Settings, stop_while_full: bool
) -> None:
    disk = SwitchDisk()
    orch = await start_orchestrator(disk=disk, retry_s=FAST_RETRY)
    acked = await orch.submit(spec(*_slow_then_next("m")), "acked")
    await until(lambda: _running(orch, "acked"), what="workflow acked running")
    disk.fill(room=3)
    with pytest.raises(Exception, match="disk is full"):
        await orch.submit(spec(*_slow_then_next("x")), "refused")
    if not stop_while_full:
        disk.free()
        await until(lambda: _ready(orch), what="the journal written again")
    await orch.stop(grace_s=5)  # lets `a` finish (in memory only, if the disk is full)
    assert_no_torn_record(settings.journal_dir)

    again = await start_orchestrator()  # the real disk
    done = await again.wait(acked.id, 30)
    assert done.state == "succeeded"
    with pytest.raises(Exception, match="no workflow 'refused'"):
        await again.get("refused")
    runs = [row[:2] for row in marker_lines(workspace(settings, "acked") / "m")]
    if stop_while_full:  # `a` finished but could not be journaled: it runs again, same attempt
        assert runs == [("a", 1), ("a", 1), ("b", 1)]
    else:
        assert runs == [("a", 1), ("b", 1)]


async def _running(orch: Any, wf_id: str) -> bool:
    return str((await orch.task(wf_id, "a")).state) == "running"


async def _ready(orch: Any) -> bool:
    return bool(orch.health()["ready"])


async def test_short_writes_are_finished(start_orchestrator: StartOrchestrator) -> None:
    orch = await start_orchestrator(disk=ShortWriteDisk(), checkpoint_every=2)
    tasks = [
        {"id": f"t{i}", "action": "noop", "depends_on": [f"t{i - 1}"] if i else []}
        for i in range(5)
    ]
    submitted = await orch.submit(spec(*tasks), "short")
    assert (await orch.wait(submitted.id, 30)).state == "succeeded"
    await orch.stop()
    again = await start_orchestrator()
    view = await again.get("short")
    assert view.state == "succeeded" and view.tasks_total == 5


def test_write_all_finishes_a_short_write_and_a_failed_append_is_cut_back(tmp_path: Path) -> None:
    path = tmp_path / "f"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o600)
    try:
        write_all(ShortWriteDisk(), fd, b"x" * 1000)
    finally:
        os.close(fd)
    assert path.read_bytes() == b"x" * 1000

    journal = JournalFile(tmp_path, "wf-1")
    good = encode({"s": 1, "k": "start", "task": "a", "n": 1, "at": 0.0})
    journal.append(ShortWriteDisk(), [good])
    disk = SwitchDisk()
    disk.fill(room=5)
    with pytest.raises(OSError, match="No space left"):
        journal.append(disk, [encode({"s": 2, "k": "ok", "task": "a", "n": 1, "at": 0.0})])
    assert journal.path.read_bytes() == good  # back to the last good offset
