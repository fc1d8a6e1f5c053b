"""Undoing work: automatic rollback in reverse dependency order, failed compensations,
cancellation, and manual rollback and retry."""

from __future__ import annotations

from contextlib import aclosing
from typing import Any

import pytest

from daemons.common.settings import Settings
from daemons.orchestrator.engine.service import Orchestrator
from orchestrator.helpers import marker_lines, spec, workspace
from registry.errors import Conflict

UNDO = {"action": "noop", "params": {"marker": "undo"}}


def task(task_id: str, *deps: str, undo: bool = True, **extra: Any) -> dict[str, Any]:
    return {
        "id": task_id,
        "action": "noop",
        "params": {"marker": "do"},
        "depends_on": list(deps),
        **({"compensate": UNDO} if undo else {}),
        **extra,
    }


def failing(task_id: str, *deps: str, unless: str | None = None) -> dict[str, Any]:
    params = {"failures": 99} if unless is None else {"unless": unless}
    return {
        "id": task_id,
        "action": "flaky",
        "params": params,
        "depends_on": list(deps),
        "retry": {"max_attempts": 1},
    }


def undone(settings: Settings, workflow_id: str) -> list[str]:
    return [t for t, _, _ in marker_lines(workspace(settings, workflow_id) / "undo")]


async def test_a_failure_undoes_succeeded_tasks_in_reverse_dependency_order(
    orch: Orchestrator, settings: Settings
) -> None:
    # a → b → c → x (fails); a → d; e has nothing to undo; f is independent
    wf = spec(
        task("a"),
        task("b", "a"),
        task("c", "b"),
        task("d", "a"),
        task("e", "d", undo=False),
        task("f"),
        failing("x", "c", "e"),
    )
    done = await orch.wait((await orch.submit(wf)).id, 10)

    assert done.state == "rolled_back"
    assert done.reason == "task 'x' failed: planned failure 1"
    order = undone(settings, done.id)
    assert sorted(order) == ["a", "b", "c", "d", "f"]
    for later, earlier in [("c", "b"), ("b", "a"), ("d", "a")]:
        assert order.index(later) < order.index(earlier)
    states = {t.id: t.state for t in await orch.tasks(done.id)}
    assert states == {
        "a": "compensated",
        "b": "compensated",
        "c": "compensated",
        "d": "compensated",
        "e": "succeeded",  # nothing to undo
        "f": "compensated",
        "x": "failed",
    }
    a = await orch.task(done.id, "a")
    assert a.compensation is not None and a.compensation.state == "succeeded"


async def test_a_compensation_failing_for_good_fails_the_workflow_until_rolled_back_again(
    orch: Orchestrator, settings: Settings
) -> None:
    fragile_undo = {
        "action": "flaky",
        "params": {"unless": "fixed", "marker": "undo"},
        "retry": {"max_attempts": 2, "backoff_s": 0},
    }
    wf = spec(
        task("a", compensate=fragile_undo),
        task("b", "a"),
        failing("x", "b"),
    )
    done = await orch.wait((await orch.submit(wf)).id, 10)

    assert done.state == "failed"
    assert done.reason is not None
    assert done.reason.startswith("compensation of task 'a' failed for good: fixed is missing")
    assert "still to undo: a" in done.reason
    assert undone(settings, done.id) == ["b", "a", "a"]  # b undone; a tried twice
    a = await orch.task(done.id, "a")
    assert a.state == "succeeded" and a.compensation and a.compensation.state == "failed"

    (workspace(settings, done.id) / "fixed").touch()
    await orch.rollback(done.id)
    again = await orch.wait(done.id, 10)
    assert again.state == "rolled_back"
    assert undone(settings, done.id) == ["b", "a", "a", "a"]
    a = await orch.task(done.id, "a")
    assert a.state == "compensated" and a.compensation and a.compensation.attempts == 3


async def test_cancel_stops_running_tasks_then_undoes_what_succeeded(
    orch: Orchestrator, settings: Settings
) -> None:
    wf = spec(
        task("a"),
        {"id": "s", "action": "sleep", "params": {"seconds": 60}, "depends_on": ["a"]}
        | {"compensate": UNDO},
        task("t", "s"),
    )
    async with aclosing(orch.events()) as events:
        submitted = await orch.submit(wf)
        async for event in events:
            if event.task_id == "s" and event.state == "running":
                break

    cancelling = await orch.cancel(submitted.id)
    assert cancelling.state in ("running", "rolling_back", "cancelled")
    done = await orch.wait(submitted.id, 10)

    assert done.state == "cancelled"
    assert undone(settings, done.id) == ["a"]  # s never succeeded: nothing of it to undo
    states = {t.id: t.state for t in await orch.tasks(done.id)}
    assert states == {"a": "compensated", "s": "cancelled", "t": "cancelled"}
    with pytest.raises(Conflict, match="already finished"):
        await orch.cancel(done.id)


async def test_manual_rollback_undoes_a_succeeded_workflow(
    orch: Orchestrator, settings: Settings
) -> None:
    done = await orch.wait((await orch.submit(spec(task("a"), task("b", "a")))).id, 10)
    assert done.state == "succeeded"
    with pytest.raises(Conflict, match="only failed, cancelled or rolled back"):
        await orch.retry(done.id)

    await orch.rollback(done.id)
    rolled = await orch.wait(done.id, 10)

    assert rolled.state == "rolled_back" and rolled.reason == "rollback requested"
    assert undone(settings, done.id) == ["b", "a"]
    with pytest.raises(Conflict, match="nothing left to undo"):
        await orch.rollback(done.id)


async def test_rollback_of_a_running_workflow_is_refused(orch: Orchestrator) -> None:
    submitted = await orch.submit(spec({"id": "s", "action": "sleep", "params": {"seconds": 60}}))
    with pytest.raises(Conflict, match="cancel it instead"):
        await orch.rollback(submitted.id)
    await orch.cancel(submitted.id)
    assert (await orch.wait(submitted.id, 10)).state == "cancelled"


async def test_retry_resumes_from_the_failed_task_without_rerunning_succeeded_ones(
    orch: Orchestrator, settings: Settings
) -> None:
    wf = spec(
        task("a", undo=False),
        failing("b", "a", unless="fixed") | {"params": {"unless": "fixed", "marker": "do"}},
        task("c", "b", undo=False),
        on_failure="stop",
    )
    failed = await orch.wait((await orch.submit(wf)).id, 10)
    assert failed.state == "failed"
    assert failed.task_counts == {"succeeded": 1, "failed": 1, "skipped": 1}

    (workspace(settings, failed.id) / "fixed").touch()
    resumed = await orch.retry(failed.id)
    assert resumed.state == "running" and resumed.reason is None
    done = await orch.wait(failed.id, 10)

    assert done.state == "succeeded"
    ran = [(t, n) for t, n, _ in marker_lines(workspace(settings, done.id) / "do")]
    assert ran == [("a", 1), ("b", 1), ("b", 2), ("c", 1)]  # attempt numbers go on


async def test_retry_after_a_rollback_runs_the_undone_tasks_again(
    orch: Orchestrator, settings: Settings
) -> None:
    wf = spec(task("a"), failing("x", "a", unless="fixed"))
    rolled = await orch.wait((await orch.submit(wf)).id, 10)
    assert rolled.state == "rolled_back"

    (workspace(settings, rolled.id) / "fixed").touch()
    await orch.retry(rolled.id)
    done = await orch.wait(rolled.id, 10)

    assert done.state == "succeeded"
    assert [t for t, _, _ in marker_lines(workspace(settings, done.id) / "do")] == ["a", "a"]
    assert (await orch.task(done.id, "a")).attempts == 2
