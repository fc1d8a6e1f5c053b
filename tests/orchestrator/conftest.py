"""Fixtures for the orchestrator engine tests: real engines on the test's PRVNG_HOME."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest

from daemons.common.settings import Settings
from daemons.orchestrator.actions import Action, load_actions
from daemons.orchestrator.service import Orchestrator
from orchestrator.helpers import FlakyAction


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
    """Start engines on this test's PRVNG_HOME; each is stopped at teardown if still up."""
    started: list[Orchestrator] = []

    async def start(**kwargs: Any) -> Orchestrator:
        kwargs.setdefault("concurrency", 8)
        orch = Orchestrator(settings, actions=actions, **kwargs)
        await orch.start()
        started.append(orch)
        return orch

    yield start
    for orch in started:
        await orch.stop(grace_s=0)  # idempotent


@pytest.fixture
async def orch(start_orchestrator: StartOrchestrator) -> Orchestrator:
    return await start_orchestrator()
