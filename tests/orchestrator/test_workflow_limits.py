"""A workflow too big to run safely is refused up front with `invalid_input` naming the
limit it broke (tasks, dependency depth, params bytes per task and in total), over the
orchestrator API on a real socket; the engine stays responsive while it checks one."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from daemons.common.asgi import AsgiServer
from daemons.orchestrator.engine.service import Orchestrator
from daemons.orchestrator.model import (
    MAX_DEPTH,
    MAX_TASK_PARAMS_BYTES,
    MAX_TASKS,
    MAX_WORKFLOW_PARAMS_BYTES,
    WorkflowSpec,
)
from daemons.orchestrator.serving.api import create_app
from daemons.orchestrator.serving.client import OrchestratorClient
from registry.errors import InvalidInput

TOKEN = "limits-token"


@pytest.fixture
async def client(orch: Orchestrator) -> AsyncIterator[OrchestratorClient]:
    server = AsgiServer(create_app(orch, TOKEN))
    await server.start()
    try:
        async with OrchestratorClient(server.url, TOKEN) as c:
            yield c
    finally:
        await server.stop()


def _spec(tasks: list[dict[str, Any]]) -> WorkflowSpec:
    return WorkflowSpec.model_validate({"name": "big", "tasks": tasks})


def _noop(i: int, *deps: int, **params: Any) -> dict[str, Any]:
    return {
        "id": f"t{i}",
        "action": "noop",
        "depends_on": [f"t{d}" for d in deps],
        "params": params,
    }


async def _refused(client: OrchestratorClient, spec: WorkflowSpec) -> InvalidInput:
    with pytest.raises(InvalidInput) as caught:
        await client.submit(spec)
    assert (await client.list()).workflows == []  # nothing was journaled
    return caught.value


async def test_too_many_tasks(client: OrchestratorClient) -> None:
    err = await _refused(client, _spec([_noop(i) for i in range(MAX_TASKS + 1)]))
    assert err.details["limit"] == "max_tasks" and err.details["max"] == MAX_TASKS
    assert f"{MAX_TASKS:,}" in err.message


async def test_too_deep_a_chain(client: OrchestratorClient) -> None:
    chain = [_noop(0)] + [_noop(i, i - 1) for i in range(1, MAX_DEPTH + 1)]
    err = await _refused(client, _spec(chain))
    assert err.details["limit"] == "max_depth" and err.details["max"] == MAX_DEPTH


async def test_too_big_params_of_one_task(client: OrchestratorClient) -> None:
    err = await _refused(client, _spec([_noop(0, blob="x" * MAX_TASK_PARAMS_BYTES)]))
    assert err.details["limit"] == "max_task_params_bytes" and err.details["task"] == "t0"


async def test_too_big_params_in_total(client: OrchestratorClient) -> None:
    each = MAX_TASK_PARAMS_BYTES // 2
    n = MAX_WORKFLOW_PARAMS_BYTES // each + 1
    err = await _refused(client, _spec([_noop(i, blob="x" * each) for i in range(n)]))
    assert err.details["limit"] == "max_workflow_params_bytes"


async def test_a_workflow_at_the_limits_runs(client: OrchestratorClient) -> None:
    chain = [_noop(0)] + [_noop(i, i - 1) for i in range(1, MAX_DEPTH)]
    submitted = await client.submit(_spec(chain))
    assert (await client.wait(submitted.id, 60)).state == "succeeded"


async def test_a_big_invalid_spec_gets_a_bounded_error_with_true_locations(
    client: OrchestratorClient,
) -> None:
    tasks = [_noop(i) for i in range(1200)]
    for task in tasks[700:]:
        task["retry"] = {"max_attempts": 0}
    body = {"name": "big", "tasks": tasks}
    with pytest.raises(InvalidInput, match=r"tasks\.700\.retry\.max_attempts") as caught:
        await client._call("POST", "/v1/workflows", json=body)
    assert caught.value.details["error_count"] == 500
    assert len(caught.value.details["errors"]) == 20
