"""The facade's contract: bad specs refused with clear errors (and nothing journaled),
unknown ids, listing with filters and pages, capped logs, waiting and events."""

from __future__ import annotations

from typing import Any

import pytest

from daemons.common.settings import Settings
from daemons.orchestrator.engine.logs import LOG_CAP_BYTES
from daemons.orchestrator.engine.service import Orchestrator
from daemons.orchestrator.model import TaskState, WorkflowState
from daemons.orchestrator.views import Event
from orchestrator.conftest import StartOrchestrator
from orchestrator.helpers import spec
from registry.errors import InvalidInput, NotFound
from tests.waiting import until


def noop(task_id: str, *deps: str, **extra: Any) -> dict[str, Any]:
    return {"id": task_id, "action": "noop", "depends_on": list(deps), **extra}


@pytest.mark.parametrize(
    ("tasks", "message", "details"),
    [
        (
            [noop("a", "b"), noop("b", "c"), noop("c", "a")],
            "cycle: a → b → c → a (each task depends on the next); remove one of these",
            {"cycle": ["a", "b", "c", "a"]},
        ),
        ([noop("a", "a")], "cycle: a → a", {"cycle": ["a", "a"]}),
        (
            [noop("a"), noop("b", "a", "zz")],
            "task 'b' depends on unknown task 'zz'",
            {"task": "b", "dependency": "zz"},
        ),
        ([noop("a"), noop("a")], "duplicate task id 'a' (tasks[0] and tasks[1])", {"task": "a"}),
        (
            [{"id": "x", "action": "nope"}],
            "task 'x': unknown action 'nope'; available actions: flaky, noop, sleep",
            {"task": "x", "action": "nope"},
        ),
        (
            [{"id": "x", "action": "sleep", "params": {"seconds": -1}}],
            "task 'x': invalid params for action 'sleep': seconds: Input should be greater",
            {"task": "x", "action": "sleep"},
        ),
        (
            [{"id": "x", "action": "noop", "params": {"marker": "../out"}}],
            "task 'x': invalid params for action 'noop': marker: Value error, '../out' must",
            {"task": "x"},
        ),
        (
            [noop("x", compensate={"action": "undo-it"})],
            "task 'x': unknown compensate action 'undo-it'",
            {"task": "x"},
        ),
    ],
)
async def test_a_bad_spec_is_refused_before_anything_is_journaled(
    orch: Orchestrator,
    settings: Settings,
    tasks: list[dict[str, Any]],
    message: str,
    details: dict[str, Any],
) -> None:
    with pytest.raises(InvalidInput) as caught:
        await orch.submit(spec(*tasks))
    assert caught.value.message.startswith(message)
    assert details.items() <= caught.value.details.items()
    assert [p.name for p in settings.journal_dir.iterdir()] == [".lock"]
    assert (await orch.list()).workflows == []


async def test_unknown_workflows_and_tasks_are_not_found(orch: Orchestrator) -> None:
    with pytest.raises(NotFound, match="no workflow 'wf-nope'"):
        await orch.get("wf-nope")
    with pytest.raises(NotFound):
        await orch.cancel("wf-nope")
    done = await orch.wait((await orch.submit(spec(noop("a")))).id, 10)
    with pytest.raises(NotFound, match="has no task 'zz'"):
        await orch.task(done.id, "zz")
    with pytest.raises(NotFound):
        await orch.logs(done.id, "zz")


async def test_list_filters_by_state_label_and_name_and_pages_newest_first(
    orch: Orchestrator,
) -> None:
    ids = []
    for i in range(5):
        labels = {"env": "dev" if i % 2 else "prod", "team": "a"}
        submitted = await orch.submit(spec(noop("a"), name=f"wf{i % 2}", labels=labels))
        ids.append((await orch.wait(submitted.id, 10)).id)
    running = await orch.submit(spec({"id": "s", "action": "sleep", "params": {"seconds": 60}}))

    everything = await orch.list()
    assert [w.id for w in everything.workflows] == [running.id, *reversed(ids)]
    assert everything.next_cursor is None
    assert [w.id for w in (await orch.list(state=WorkflowState.RUNNING)).workflows] == [running.id]
    assert [w.id for w in (await orch.list(labels={"env": "dev"})).workflows] == [ids[3], ids[1]]
    assert len((await orch.list(labels={"team": "a"})).workflows) == 5
    assert (await orch.list(labels={"team": "a", "env": "qa"})).workflows == []
    assert [w.id for w in (await orch.list(name="wf0")).workflows] == [ids[4], ids[2], ids[0]]

    first = await orch.list(limit=2)
    second = await orch.list(limit=2, cursor=first.next_cursor)
    third = await orch.list(limit=2, cursor=second.next_cursor)
    paged = [w.id for page in (first, second, third) for w in page.workflows]
    assert paged == [w.id for w in everything.workflows] and third.next_cursor is None
    with pytest.raises(InvalidInput, match="limit must be between 1 and 1000"):
        await orch.list(limit=0)


async def test_list_is_newest_first_by_creation_and_its_cursor_survives_new_arrivals(
    orch: Orchestrator,
) -> None:
    """Chosen ids do not sort by time: the order is creation time, and a page boundary
    stays put while newer workflows arrive between pages."""
    for wf_id in ("zeta", "alpha", "mid", "beta"):
        await orch.submit(spec(noop("a")), wf_id)
    assert [w.id for w in (await orch.list()).workflows] == ["beta", "mid", "alpha", "zeta"]

    first = await orch.list(limit=2)
    for wf_id in ("zz-new", "aa-new"):
        await orch.submit(spec(noop("a")), wf_id)
    second = await orch.list(limit=2, cursor=first.next_cursor)
    assert [w.id for w in first.workflows + second.workflows] == ["beta", "mid", "alpha", "zeta"]
    assert second.next_cursor is None
    with pytest.raises(InvalidInput, match="cursor"):
        await orch.list(cursor="not-a-cursor")


async def test_task_filters_and_views(orch: Orchestrator) -> None:
    done = await orch.wait(
        (await orch.submit(spec(noop("a", priority=3), noop("b", "a"), on_failure="stop"))).id,
        10,
    )
    assert done.tasks_total == 2 and done.finished_at is not None
    assert [t.id for t in await orch.tasks(done.id, TaskState.SUCCEEDED)] == ["a", "b"]
    assert await orch.tasks(done.id, TaskState.FAILED) == []
    b = await orch.task(done.id, "b")
    assert b.depends_on == ["a"] and b.attempts == 1 and b.max_attempts == 1
    assert b.compensation is None and b.result is None


async def test_logs_keep_the_newest_64_kib(
    start_orchestrator: StartOrchestrator,
) -> None:
    orch = await start_orchestrator()
    chatty = {"id": "c", "action": "flaky", "params": {"log_bytes": 200_000}}
    done = await orch.wait((await orch.submit(spec(chatty))).id, 10)

    logs = await orch.logs(done.id, "c")
    assert logs.truncated and logs.dropped_bytes > 100_000
    assert sum(len(line.text) for line in logs.lines) <= LOG_CAP_BYTES
    assert logs.lines[-1].text.startswith("0001999 ") and logs.lines[-1].stream == "stdout"
    assert [line.text[:7] for line in (await orch.logs(done.id, "c", tail=2)).lines] == [
        "0001998",
        "0001999",
    ]

    await orch.stop()  # logs are journaled: a restart still has them
    again = await start_orchestrator()
    assert (await again.logs(done.id, "c", tail=2)) == await orch.logs(done.id, "c", tail=2)


async def test_wait_reports_progress_and_returns_early_on_timeout(orch: Orchestrator) -> None:
    seen: list[Event] = []

    async def progress(event: Event) -> None:
        seen.append(event)

    done = await orch.wait((await orch.submit(spec(noop("a"), noop("b", "a")))).id, 10, progress)
    assert done.state == "succeeded"
    assert [(e.kind, e.task_id, e.state) for e in seen][-3:] == [
        ("task", "b", "running"),
        ("task", "b", "succeeded"),
        ("workflow", None, "succeeded"),
    ]

    slow = await orch.submit(spec({"id": "s", "action": "sleep", "params": {"seconds": 60}}))
    assert (await orch.wait(slow.id, 0.05)).state == "running"


async def test_events_replay_from_a_sequence_number(orch: Orchestrator) -> None:
    done = await orch.wait((await orch.submit(spec(noop("a")))).id, 10)
    replay = []
    async for event in orch.events(since=0, workflow_id=done.id):
        replay.append((event.seq, event.kind, event.state))
        if event.kind == "workflow" and event.state == "succeeded":
            break
    assert replay == [
        (1, "workflow", "pending"),
        (2, "task", "running"),
        (3, "task", "succeeded"),
        (4, "workflow", "succeeded"),
    ]


async def test_logs_show_while_running_and_once_after(
    start_orchestrator: StartOrchestrator,
) -> None:
    orch = await start_orchestrator()
    slow = {"id": "s", "action": "flaky", "params": {"log_bytes": 200, "hold_s": 5}}
    wf = await orch.submit(spec(slow))

    async def live_lines() -> bool:
        return bool((await orch.logs(wf.id, "s")).lines)

    await until(live_lines, what="live log lines while the attempt holds", within_s=5)
    assert (await orch.task(wf.id, "s")).state == TaskState.RUNNING
    assert [line.text[:7] for line in (await orch.logs(wf.id, "s")).lines] == ["0000000", "0000001"]
    await orch.cancel(wf.id)
    await orch.wait(wf.id, 10)

    quick = {"id": "q", "action": "flaky", "params": {"log_bytes": 200}}
    done = await orch.wait((await orch.submit(spec(quick))).id, 10)
    assert [line.text[:7] for line in (await orch.logs(done.id, "q")).lines] == [
        "0000000",
        "0000001",
    ]
