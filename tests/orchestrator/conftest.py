"""Fixtures for the orchestrator engine tests: real engines on the test's PRVNG_HOME."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from daemons.common.settings import Settings
from daemons.common.state import StateStore
from daemons.orchestrator.actions import Action, ActionContext, load_actions
from daemons.orchestrator.engine.service import Orchestrator
from orchestrator.helpers import FlakyAction


@pytest.fixture
async def store() -> AsyncIterator[StateStore]:
    """A real embedded SurrealDB in memory (what provider actions record servers in)."""
    async with StateStore.open("mem://") as state:
        yield state


ContextFactory = Callable[[str], ActionContext]


@pytest.fixture
def action_context(tmp_path: Path, settings: Settings, store: StateStore) -> ContextFactory:
    """Builds the context a task `task_id` of workflow `wf-1` (attempt 1) gets."""

    def make(task_id: str) -> ActionContext:
        return ActionContext(
            workflow_id="wf-1",
            task_id=task_id,
            attempt=1,
            idempotency_key=f"wf-1/{task_id}",
            workspace=tmp_path / "work",
            settings=settings,
            log=lambda _stream, _text: None,
            state=store,
        )

    return make


@pytest.fixture
def actions() -> dict[str, Action]:
    found = load_actions(["noop", "sleep"])
    found["flaky"] = FlakyAction()
    return found


StartOrchestrator = Callable[..., Awaitable[Orchestrator]]


@pytest.fixture
async def start_orchestrator(
    settings: Settings, actions: dict[str, Action]
) -> AsyncIterator[StartOrchestrator]:
    """Start engines on this test's PRVNG_HOME (or `settings=`); each is stopped at teardown
    if still up."""
    started: list[Orchestrator] = []

    async def start(**kwargs: Any) -> Orchestrator:
        kwargs.setdefault("concurrency", 8)
        orch = Orchestrator(kwargs.pop("settings", settings), actions=actions, **kwargs)
        await orch.start()
        started.append(orch)
        return orch

    yield start
    for orch in started:
        await orch.stop(grace_s=0)  # idempotent


@pytest.fixture
async def orch(start_orchestrator: StartOrchestrator) -> Orchestrator:
    return await start_orchestrator()
