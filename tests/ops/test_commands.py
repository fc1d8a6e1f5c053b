"""Control ops (a retry or rollback of a recorded workflow) at the dispatcher: the command
runs while the workflow stands as planned, never twice, and a restarted controller knows
which workflow an op commanded."""

from __future__ import annotations

import pytest

from daemons.common.state import StateStore
from daemons.controller import OrchestratorDispatcher
from daemons.controller.dispatch import RunState
from daemons.ops import OpPlan, OpRequest, OpTarget
from daemons.orchestrator.engine.service import Orchestrator
from daemons.orchestrator.model import WorkflowSpec, WorkflowState
from registry.errors import Conflict
from tools.plans import control_plan

_SPEC = {
    "name": "undo-me",
    "tasks": [{"id": "a", "action": "noop", "compensate": {"action": "noop"}}],
}


async def _rollback_op(orchestrator: Orchestrator, wf_id: str) -> OpRequest:
    plan = await control_plan("workflow.rollback", orchestrator, wf_id)
    return OpRequest(
        type="workflow.rollback",
        target=OpTarget(name=wf_id, provider="local"),
        risk="destructive",
        params={"id": wf_id},
        plan=OpPlan(workflow=plan.workflow, state_digest=plan.state_digest),
    )


async def test_a_rollback_op_runs_once_and_a_restarted_controller_follows_it(
    orchestrator: Orchestrator, state: StateStore
) -> None:
    await orchestrator.submit(WorkflowSpec.model_validate(_SPEC), workflow_id="w-1")
    assert (await orchestrator.wait("w-1", timeout_s=20)).state is WorkflowState.SUCCEEDED
    op = await _rollback_op(orchestrator, "w-1")
    dispatcher = OrchestratorDispatcher(orchestrator, state)
    assert await dispatcher.outcome("op-a") is None  # never ran
    await dispatcher.submit("op-a", op)
    assert await dispatcher.wait("op-a") is RunState.SUCCEEDED
    assert (await orchestrator.get("w-1")).state is WorkflowState.ROLLED_BACK
    (task,) = await orchestrator.tasks("w-1")
    assert task.compensation is not None and task.compensation.attempts == 1

    # Delivered again (a controller died before its ack): the workflow moved, so nothing runs.
    with pytest.raises(Conflict, match="changed since op-a was planned"):
        await dispatcher.submit("op-a", op)
    restarted = OrchestratorDispatcher(orchestrator, state)
    assert await restarted.outcome("op-a") is RunState.SUCCEEDED
    assert await restarted.wait("op-a") is RunState.SUCCEEDED
    (task,) = await orchestrator.tasks("w-1")
    assert task.compensation is not None and task.compensation.attempts == 1


async def test_a_command_whose_workflow_moved_since_the_plan_does_not_run(
    orchestrator: Orchestrator, state: StateStore
) -> None:
    await orchestrator.submit(WorkflowSpec.model_validate(_SPEC), workflow_id="w-2")
    await orchestrator.wait("w-2", timeout_s=20)
    op = await _rollback_op(orchestrator, "w-2")
    await orchestrator.rollback("w-2")  # someone else undid it meanwhile
    await orchestrator.wait("w-2", timeout_s=20)
    dispatcher = OrchestratorDispatcher(orchestrator, state)
    with pytest.raises(Conflict):
        await dispatcher.submit("op-b", op)
    assert await dispatcher.outcome("op-b") is None
