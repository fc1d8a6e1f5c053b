"""Restarts in process: interrupted attempts run again with the same idempotency key,
succeeded tasks never do, backoff and rollbacks resume, damaged files are survived."""

from __future__ import annotations

from datetime import datetime

import pytest

from daemons.common.settings import Settings
from daemons.orchestrator.durability.journal import JournalFile, encode
from daemons.orchestrator.engine.service import Orchestrator
from orchestrator.conftest import StartOrchestrator
from orchestrator.helpers import marker_lines, spec, workspace
from registry.errors import Unavailable


async def task_reached(orch: Orchestrator, workflow_id: str, task_id: str, state: str) -> None:
    """Wait for the event saying `task_id` reached `state` (durably)."""
    async for event in orch.events(since=0, workflow_id=workflow_id):
        if event.task_id == task_id and event.state == state:
            return


async def test_an_interrupted_attempt_reruns_with_its_key_and_finished_tasks_do_not(
    start_orchestrator: StartOrchestrator, settings: Settings
) -> None:
    orch = await start_orchestrator()
    wf = spec(
        {"id": "a", "action": "flaky", "params": {"marker": "m"}},
        {
            "id": "b",
            "action": "flaky",
            "params": {"marker": "m", "hold_s": 0.3},
            "depends_on": ["a"],
        },
        {"id": "c", "action": "flaky", "params": {"marker": "m"}, "depends_on": ["b"]},
    )
    submitted = await orch.submit(wf)
    await task_reached(orch, submitted.id, "b", "running")
    await orch.stop(grace_s=0)  # like a crash: b's start is journaled, its end is not

    again = await start_orchestrator()
    done = await again.wait(submitted.id, 10)

    assert done.state == "succeeded"
    runs = marker_lines(workspace(settings, done.id) / "m")
    assert [t for t, _, _ in runs].count("a") == 1
    assert {n for t, n, _ in runs if t == "b"} == {1}  # re-run as attempt 1, not 2
    b = await again.task(done.id, "b")
    assert b.attempts == 1 and b.result == {"attempt": 1, "key": f"{done.id}/b/1"}


async def test_a_backoff_in_progress_resumes_after_a_restart(
    start_orchestrator: StartOrchestrator,
) -> None:
    orch = await start_orchestrator()
    task = {
        "id": "f",
        "action": "flaky",
        "params": {"failures": 1},
        "retry": {"max_attempts": 2, "backoff_s": 0.3, "jitter": 0},
    }
    submitted = await orch.submit(spec(task))
    await task_reached(orch, submitted.id, "f", "retrying")
    failed_at = datetime.now().timestamp()
    await orch.stop(grace_s=0)

    again = await start_orchestrator()
    pending = await again.task(submitted.id, "f")
    assert pending.state == "pending" and pending.next_attempt_at is not None
    done = await again.wait(submitted.id, 10)

    assert done.state == "succeeded"
    f = await again.task(submitted.id, "f")
    assert f.attempts == 2 and f.started_at is not None
    assert datetime.fromisoformat(f.started_at).timestamp() >= failed_at + 0.25


async def test_a_rollback_interrupted_mid_compensation_finishes_after_a_restart(
    start_orchestrator: StartOrchestrator, settings: Settings
) -> None:
    orch = await start_orchestrator()
    slow_undo = {"action": "flaky", "params": {"marker": "undo", "hold_s": 0.3}}
    wf = spec(
        {"id": "a", "action": "noop", "compensate": slow_undo},
        {"id": "x", "action": "flaky", "params": {"failures": 9}, "depends_on": ["a"]},
    )
    submitted = await orch.submit(wf)
    await task_reached(orch, submitted.id, "a", "running")  # the task ran, then its compensation
    async for event in orch.events(since=0, workflow_id=submitted.id):
        if event.kind == "compensation" and event.state == "running":
            break
    await orch.stop(grace_s=0)

    again = await start_orchestrator()
    assert (await again.get(submitted.id)).state == "rolling_back"
    done = await again.wait(submitted.id, 10)

    assert done.state == "rolled_back"
    a = await again.task(done.id, "a")
    assert a.state == "compensated" and a.compensation and a.compensation.attempts == 1
    undo_runs = marker_lines(workspace(settings, done.id) / "undo")
    assert {n for _, n, _ in undo_runs} == {1}


async def test_a_torn_journal_tail_is_survived(
    start_orchestrator: StartOrchestrator, settings: Settings
) -> None:
    orch = await start_orchestrator()
    wf = spec(
        {"id": "a", "action": "noop"},
        {"id": "b", "action": "sleep", "params": {"seconds": 0.2}, "depends_on": ["a"]},
    )
    submitted = await orch.submit(wf)
    await task_reached(orch, submitted.id, "b", "running")
    await orch.stop(grace_s=0)
    journal = JournalFile(settings.journal_dir, submitted.id)
    intact = journal.path.read_bytes()
    with journal.path.open("ab") as f:
        f.write(encode({"s": 99, "k": "ok", "task": "b", "n": 1, "at": 0.0})[:-20])

    again = await start_orchestrator()
    assert journal.path.read_bytes() == intact
    done = await again.wait(submitted.id, 10)
    assert done.state == "succeeded" and done.task_counts == {"succeeded": 2}


async def test_damaged_or_never_acknowledged_workflows_do_not_stop_the_others(
    start_orchestrator: StartOrchestrator, settings: Settings
) -> None:
    orch = await start_orchestrator()
    good = await orch.wait((await orch.submit(spec({"id": "a", "action": "noop"}))).id, 10)
    await orch.stop()
    torn_submit = JournalFile(settings.journal_dir, "wf-0000000000000000torn")
    submit = {"s": 1, "k": "submit", "at": 1.0, "wf": "x", "spec": {"name": "x", "tasks": []}}
    torn_submit.path.write_bytes(encode(submit)[:40])  # the crash hit the submit's write
    bad_replay = JournalFile(settings.journal_dir, "wf-0000000000000000bad0")
    bad_replay.path.write_bytes(encode(submit))  # intact, but no longer a valid spec

    again = await start_orchestrator()

    assert [w.id for w in (await again.list()).workflows] == [good.id]
    assert not torn_submit.path.exists()  # never acknowledged: gone
    assert bad_replay.path.exists()  # kept for inspection


async def test_one_journal_directory_takes_one_engine(
    start_orchestrator: StartOrchestrator,
) -> None:
    await start_orchestrator()
    with pytest.raises(Unavailable, match="in use by pid"):
        await start_orchestrator()


async def test_cancelling_right_after_a_restart_cancels_resumed_attempts(
    start_orchestrator: StartOrchestrator,
) -> None:
    orch = await start_orchestrator()
    submitted = await orch.submit(spec({"id": "s", "action": "sleep", "params": {"seconds": 60}}))
    await task_reached(orch, submitted.id, "s", "running")
    await orch.stop(grace_s=0)

    again = await start_orchestrator()
    await again.cancel(submitted.id)  # before the resumed attempt got to run at all
    done = await again.wait(submitted.id, 5)

    assert done.state == "cancelled" and done.task_counts == {"cancelled": 1}
    assert again.engine.running == 0
