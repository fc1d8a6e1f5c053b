"""The engine on a real journal: DAG order, priorities, the concurrency bound, retries with
backoff and timeouts."""

from __future__ import annotations

import random
from datetime import datetime
from typing import Any, ClassVar

import pytest
from pydantic import BaseModel, ConfigDict

from daemons.common.settings import Settings
from daemons.orchestrator.actions import Action, ActionContext, action_error, is_retryable
from daemons.orchestrator.engine.service import Orchestrator
from daemons.orchestrator.views import Event
from orchestrator.conftest import StartOrchestrator
from orchestrator.helpers import marker_lines, spec, workspace
from registry.errors import (
    Conflict,
    Forbidden,
    Internal,
    InvalidInput,
    NotFound,
    PlatformError,
    Timeout,
    Unavailable,
)


async def history(orch: Orchestrator, workflow_id: str | None = None) -> list[Event]:
    """Every event published so far (optionally of one workflow), oldest first."""
    last = orch.engine.events.last_seq
    events: list[Event] = []
    if last == 0:
        return events
    async for event in orch.events(since=0):
        if workflow_id is None or event.workflow_id == workflow_id:
            events.append(event)
        if event.seq >= last:
            break
    return events


def at(event: Event) -> float:
    return datetime.fromisoformat(event.at).timestamp()


async def test_a_random_dag_runs_every_task_once_after_all_its_dependencies(
    orch: Orchestrator, settings: Settings
) -> None:
    rng = random.Random(7)
    tasks = []
    deps: dict[str, list[str]] = {}
    for i in range(200):
        earlier = [f"t{j}" for j in range(i)]
        deps[f"t{i}"] = rng.sample(earlier, k=min(len(earlier), rng.randint(0, 3)))
        tasks.append(
            {
                "id": f"t{i}",
                "action": "noop",
                "params": {"marker": "m"},
                "depends_on": deps[f"t{i}"],
            }
        )
    rng.shuffle(tasks)  # spec order is not dependency order
    submitted = await orch.submit(spec(*tasks))
    done = await orch.wait(submitted.id, 30)

    assert done.state == "succeeded" and done.task_counts == {"succeeded": 200}
    order = [task for task, _, _ in marker_lines(workspace(settings, done.id) / "m")]
    assert sorted(order) == sorted(deps)  # each exactly once
    position = {task: i for i, task in enumerate(order)}
    for task, needs in deps.items():
        assert all(position[dep] < position[task] for dep in needs), task


async def test_ready_tasks_start_by_task_priority_then_age(
    start_orchestrator: StartOrchestrator, settings: Settings
) -> None:
    orch = await start_orchestrator(concurrency=1)
    priorities = {"p0": 0, "p1": 5, "p2": -1, "p3": 5, "p4": 10}
    tasks = [
        {"id": t, "action": "noop", "priority": p, "params": {"marker": "m"}}
        for t, p in priorities.items()
    ]
    done = await orch.wait((await orch.submit(spec(*tasks))).id, 10)

    order = [task for task, _, _ in marker_lines(workspace(settings, done.id) / "m")]
    assert order == ["p4", "p1", "p3", "p0", "p2"]


async def test_a_higher_priority_workflow_overtakes_queued_tasks(
    start_orchestrator: StartOrchestrator,
) -> None:
    orch = await start_orchestrator(concurrency=1)
    low = await orch.submit(
        spec(
            {"id": "blocker", "action": "sleep", "params": {"seconds": 0.3}, "priority": 100},
            {"id": "l1", "action": "noop"},
            {"id": "l2", "action": "noop"},
            name="low",
        )
    )
    high = await orch.submit(
        spec(
            {"id": "h1", "action": "noop"}, {"id": "h2", "action": "noop"}, name="high", priority=5
        )
    )
    await orch.wait(low.id, 10)
    await orch.wait(high.id, 10)

    started = [e.task_id for e in await history(orch) if e.kind == "task" and e.state == "running"]
    assert started == ["blocker", "h1", "h2", "l1", "l2"]


async def test_no_more_attempts_run_at_once_than_the_concurrency(
    start_orchestrator: StartOrchestrator,
) -> None:
    orch = await start_orchestrator(concurrency=3)
    tasks = [{"id": f"s{i}", "action": "sleep", "params": {"seconds": 0.05}} for i in range(9)]
    done = await orch.wait((await orch.submit(spec(*tasks))).id, 10)
    assert done.state == "succeeded"

    running = peak = 0
    for event in await history(orch, done.id):
        if event.kind == "task":
            running += {"running": 1, "succeeded": -1}.get(event.state, 0)
            peak = max(peak, running)
    assert peak == 3 and running == 0


async def test_a_failing_task_is_retried_with_exponential_backoff(
    orch: Orchestrator, settings: Settings
) -> None:
    retry = {"max_attempts": 3, "backoff_s": 0.1, "jitter": 0}
    task = {"id": "f", "action": "flaky", "params": {"failures": 2, "marker": "m"}, "retry": retry}
    done = await orch.wait((await orch.submit(spec(task))).id, 10)

    assert done.state == "succeeded"
    view = await orch.task(done.id, "f")
    assert view.attempts == 3 and view.error is None
    assert view.result == {"attempt": 3, "key": f"{done.id}/f/3"}
    assert [a for _, a, _ in marker_lines(workspace(settings, done.id) / "m")] == [1, 2, 3]
    events = [e for e in await history(orch, done.id) if e.task_id == "f"]
    assert [(e.state, e.attempt) for e in events] == [
        ("running", 1),
        ("retrying", 1),
        ("running", 2),
        ("retrying", 2),
        ("running", 3),
        ("succeeded", 3),
    ]
    assert at(events[2]) - at(events[1]) >= 0.099  # backoff_s
    assert at(events[4]) - at(events[3]) >= 0.199  # backoff_s * 2
    logs = await orch.logs(done.id, "f")
    assert [line.text for line in logs.lines] == [
        "attempt 1 failed: planned failure 1; retrying",
        "attempt 2 failed: planned failure 2; retrying",
    ]


async def test_a_task_out_of_attempts_fails_and_its_dependents_are_skipped(
    orch: Orchestrator,
) -> None:
    done = await orch.wait(
        (
            await orch.submit(
                spec(
                    {"id": "ok", "action": "noop"},
                    {
                        "id": "bad",
                        "action": "flaky",
                        "params": {"failures": 9},
                        "retry": {"max_attempts": 2, "backoff_s": 0},
                    },
                    {"id": "after", "action": "noop", "depends_on": ["bad"]},
                    {"id": "later", "action": "noop", "depends_on": ["after"]},
                    on_failure="stop",
                )
            )
        ).id,
        10,
    )
    assert done.state == "failed"
    assert done.reason == "task 'bad' failed: planned failure 2"
    assert done.task_counts == {"succeeded": 1, "failed": 1, "skipped": 2}
    bad = await orch.task(done.id, "bad")
    assert bad.attempts == 2 and bad.error == "planned failure 2" and bad.finished_at


async def test_a_non_retryable_error_skips_the_remaining_attempts(orch: Orchestrator) -> None:
    task = {
        "id": "bad",
        "action": "flaky",
        "params": {"failures": 1, "retryable": False},
        "retry": {"max_attempts": 5, "backoff_s": 0},
    }
    done = await orch.wait((await orch.submit(spec(task, on_failure="stop"))).id, 10)
    assert done.state == "failed"
    assert (await orch.task(done.id, "bad")).attempts == 1


class _RaiseParams(BaseModel):
    model_config = ConfigDict(extra="forbid")

    error: str


_ERRORS: dict[str, type[PlatformError]] = {
    cls.__name__: cls
    for cls in (Unavailable, Timeout, Internal, InvalidInput, NotFound, Conflict, Forbidden)
}


class _RaiseOnce:
    """Raises the named platform error (not an ActionError) on its first attempt."""

    name: ClassVar[str] = "raise-once"
    params_model: ClassVar[type[BaseModel]] = _RaiseParams

    async def run(self, params: BaseModel, ctx: ActionContext) -> dict[str, Any]:
        assert isinstance(params, _RaiseParams)
        if ctx.attempt == 1:
            raise _ERRORS[params.error](f"{params.error} on attempt 1")
        return {}


@pytest.mark.parametrize(
    ("error", "retried"),
    [
        ("Unavailable", True),
        ("Timeout", True),
        ("Internal", True),
        ("InvalidInput", False),
        ("NotFound", False),
        ("Conflict", False),
        ("Forbidden", False),
    ],
)
async def test_one_error_policy_decides_retries_in_the_engine_and_in_actions(
    start_orchestrator: StartOrchestrator, actions: dict[str, Action], error: str, retried: bool
) -> None:
    actions["raise-once"] = _RaiseOnce()
    orch = await start_orchestrator()
    task = {
        "id": "t",
        "action": "raise-once",
        "params": {"error": error},
        "retry": {"max_attempts": 3, "backoff_s": 0},
    }
    done = await orch.wait((await orch.submit(spec(task, on_failure="stop"))).id, 10)
    assert done.state == ("succeeded" if retried else "failed")
    assert (await orch.task(done.id, "t")).attempts == (2 if retried else 1)
    # An action that wraps the same error (server.*, taskserv.*) gets the same verdict.
    raised = _ERRORS[error]("x")
    assert is_retryable(raised) is retried and action_error(raised).retryable is retried


async def test_an_attempt_over_its_timeout_is_cancelled_and_fails(orch: Orchestrator) -> None:
    task = {"id": "slow", "action": "sleep", "params": {"seconds": 60}, "timeout_s": 0.2}
    submitted = await orch.submit(spec(task, on_failure="stop"))
    done = await orch.wait(submitted.id, 10)

    assert done.state == "failed"
    slow = await orch.task(done.id, "slow")
    assert slow.error == "timed out after 0.2s" and slow.attempts == 1
    assert slow.started_at and slow.finished_at
    took = datetime.fromisoformat(slow.finished_at) - datetime.fromisoformat(slow.started_at)
    assert 0.2 <= took.total_seconds() < 2
