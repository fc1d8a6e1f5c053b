"""Finished workflows do not pile up: beyond the retention count or age they are deleted
with their journal, snapshot and work directory (unfinished ones never are), and a
restart replays only the unfinished ones (finished ones load from a summary line)."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from daemons.common.settings import Settings
from daemons.orchestrator.engine.service import Orchestrator
from daemons.orchestrator.model import WorkflowState
from orchestrator.conftest import StartOrchestrator
from orchestrator.helpers import spec, workspace
from registry.errors import NotFound


@pytest.fixture
def settings(clean_environ: Path, monkeypatch: pytest.MonkeyPatch) -> Settings:
    monkeypatch.setenv("PRVNG_WORKFLOW_RETENTION_COUNT", "2")
    monkeypatch.setenv("PRVNG_WORKFLOW_RETENTION_S", "3600")
    return Settings.from_env()


def _files(settings: Settings, workflow_id: str) -> list[Path]:
    """Everything on disk that belongs to `workflow_id`."""
    journal = sorted(settings.journal_dir.glob(f"*{workflow_id}*"))
    work = workspace(settings, workflow_id)
    return journal + ([work] if work.exists() else [])


async def _finished(orch: Orchestrator, name: str, *, fail: bool = False) -> str:
    params = {"marker": "m", "failures": 5, "retryable": False} if fail else {"marker": "m"}
    task = {"id": "t", "action": "flaky", "params": params}
    submitted = await orch.submit(spec(task, name=name, on_failure="stop"))
    done = await orch.wait(submitted.id, 30)
    assert done.state == ("failed" if fail else "succeeded"), done
    return done.id


async def _unfinished(orch: Orchestrator) -> str:
    task = {"id": "t", "action": "sleep", "params": {"seconds": 3600}}
    return (await orch.submit(spec(task, name="forever"))).id


async def test_finished_workflows_beyond_the_count_are_deleted_with_their_files(
    start_orchestrator: StartOrchestrator, settings: Settings
) -> None:
    orch = await start_orchestrator()
    running = await _unfinished(orch)
    finished = [await _finished(orch, f"wf{i}") for i in range(4)]
    await orch.engine.committer.durable()  # the deletions are journal writes too

    for gone in finished[:2]:
        with pytest.raises(NotFound):
            await orch.get(gone)
        assert _files(settings, gone) == []
    for kept in finished[2:]:
        assert (await orch.get(kept)).state == WorkflowState.SUCCEEDED
        assert workspace(settings, kept).is_dir()
    assert (await orch.get(running)).state == WorkflowState.RUNNING
    assert [w.id for w in (await orch.list()).workflows] == sorted(
        [running, *finished[2:]], reverse=True
    )


async def test_finished_workflows_older_than_the_age_are_deleted(
    start_orchestrator: StartOrchestrator, settings: Settings
) -> None:
    orch = await start_orchestrator()
    running = await _unfinished(orch)
    finished = [await _finished(orch, "a"), await _finished(orch, "b", fail=True)]
    assert await orch.prune() == []  # nothing is an hour old yet

    removed = await orch.prune(now=time.time() + 7200)

    assert sorted(removed) == sorted(finished)
    for gone in finished:
        with pytest.raises(NotFound):
            await orch.get(gone)
        assert _files(settings, gone) == []
    assert (await orch.get(running)).state == WorkflowState.RUNNING
    assert _files(settings, running) != []


async def test_a_restart_replays_only_the_unfinished_workflows(
    start_orchestrator: StartOrchestrator, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PRVNG_WORKFLOW_RETENTION_COUNT", "100")
    orch = await start_orchestrator(settings=Settings.from_env())
    running = await _unfinished(orch)
    finished = [await _finished(orch, f"wf{i}") for i in range(5)]
    failed = await _finished(orch, "failing", fail=True)
    views = {wf: await orch.get(wf) for wf in [*finished, failed]}
    await orch.stop(grace_s=0)
    orphan = workspace(settings, "wf-deleted-before-a-crash")
    orphan.mkdir(parents=True)

    again = await start_orchestrator(settings=Settings.from_env())

    assert list(again.engine.workflows) == [running]  # replayed
    assert sorted(again.engine.archived) == sorted(views)  # summaries only
    for wf, view in views.items():
        assert await again.get(wf) == view
    assert len((await again.list()).workflows) == 7
    assert not orphan.exists()
    # Reading tasks or retrying loads the finished workflow in full.
    assert [t.state for t in await again.tasks(finished[0])] == ["succeeded"]
    assert (await again.retry(failed)).state == WorkflowState.RUNNING
    assert failed in again.engine.workflows and failed not in again.engine.archived
