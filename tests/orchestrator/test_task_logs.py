"""A chatty task cannot grow the engine without bound: its log is capped in entries and
bytes (per-entry overhead included), and logs are read back in bounded pages."""

from __future__ import annotations

import pytest

from daemons.common.settings import Settings
from daemons.orchestrator.actions import Action, load_actions
from daemons.orchestrator.engine.logs import LOG_CAP_BYTES, LOG_CAP_ENTRIES, TaskLog
from daemons.orchestrator.model import WorkflowSpec
from orchestrator.conftest import StartOrchestrator
from registry.errors import InvalidInput

EMPTY_LINES = 300_000


@pytest.fixture
def actions() -> dict[str, Action]:
    return load_actions(["noop", "shell"])


def _spec(command: str) -> WorkflowSpec:
    task = {"id": "chatty", "action": "shell", "params": {"command": command}}
    return WorkflowSpec.model_validate({"name": "chatty", "tasks": [task]})


def test_empty_lines_count_against_the_cap() -> None:
    log = TaskLog()
    for _ in range(EMPTY_LINES):
        log.add("stdout", "")
    assert len(log.entries) <= LOG_CAP_ENTRIES
    assert log.dropped_lines == EMPTY_LINES - len(log.entries)


async def test_a_task_printing_many_empty_lines_keeps_a_bounded_log(
    start_orchestrator: StartOrchestrator, settings: Settings
) -> None:
    orch = await start_orchestrator()
    submitted = await orch.submit(_spec(f'yes "" | head -n {EMPTY_LINES}'))
    done = await orch.wait(submitted.id, 60)
    assert done.state == "succeeded", done
    task = orch.engine.workflows[submitted.id].tasks[0]
    assert task.log is not None
    assert len(task.log.entries) <= LOG_CAP_ENTRIES

    files = [
        settings.journal_dir / f"{submitted.id}.{suffix}" for suffix in ("journal", "snapshot")
    ]
    on_disk = sum(p.stat().st_size for p in files if p.exists())
    assert on_disk < 4 * LOG_CAP_BYTES, f"{on_disk} bytes of journal and snapshot"

    page = await orch.logs(submitted.id, "chatty")
    assert page.truncated and page.dropped_lines > EMPTY_LINES - LOG_CAP_ENTRIES
    assert 0 < len(page.lines) <= 1000 and page.next_offset is not None
    rest = await orch.logs(submitted.id, "chatty", offset=page.next_offset, limit=100)
    assert rest.offset == page.next_offset and len(rest.lines) == 100


async def test_pages_walk_the_whole_log_in_order(start_orchestrator: StartOrchestrator) -> None:
    orch = await start_orchestrator()
    submitted = await orch.submit(_spec("seq 1 250"))
    assert (await orch.wait(submitted.id, 30)).state == "succeeded"
    seen: list[str] = []
    offset: int | None = 0
    while offset is not None:
        page = await orch.logs(submitted.id, "chatty", offset=offset, limit=40)
        assert len(page.lines) <= 40
        seen += [line.text for line in page.lines if line.stream == "stdout"]
        offset = page.next_offset
    assert seen == [str(i) for i in range(1, 251)]
    last = await orch.logs(submitted.id, "chatty", tail=3)
    assert [line.text for line in last.lines][-1] != ""
    with pytest.raises(InvalidInput, match="limit"):
        await orch.logs(submitted.id, "chatty", limit=0)
