"""Where a verified op goes: the `Dispatcher` seam and the orchestrator behind it.

`submit` must be idempotent by op id (the orchestrator takes the jti as the workflow id:
submitting the same spec again is a no-op), so a controller that crashed between its
claim and its submit can be followed by another that submits again safely.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Protocol

from pydantic import ValidationError

from daemons.common.state import StateStore
from daemons.controller.commands import Commanded, Commands
from daemons.ops.model import OpRequest, control_command
from daemons.orchestrator.model import WorkflowSpec, WorkflowState
from daemons.orchestrator.protocol import OrchestratorAPI
from registry.bulk import is_sliceable, validate_in_steps
from registry.errors import InvalidInput, NotFound


class RunState(StrEnum):
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"


class Dispatcher(Protocol):
    async def submit(self, op_id: str, op: OpRequest) -> None:
        """Start the op's workflow under `op_id` (idempotent). `Unavailable` when the
        executor cannot be reached (retried later); `InvalidInput` when it never can run."""
        ...

    async def outcome(self, op_id: str) -> RunState | None:
        """Where the op stands, or None when the executor never saw it."""
        ...

    async def wait(self, op_id: str) -> RunState:
        """The op's outcome once it finished."""
        ...


_DONE = {
    WorkflowState.SUCCEEDED: RunState.SUCCEEDED,
    WorkflowState.FAILED: RunState.FAILED,
    WorkflowState.CANCELLED: RunState.FAILED,
    WorkflowState.ROLLED_BACK: RunState.FAILED,
}


class OrchestratorDispatcher:
    """Runs an op's plan, exactly as signed, as workflow `op_id` (in process or over HTTP);
    a control op's plan (a retry or rollback) runs on its recorded workflow (`commands`).
    `state`: where control ops are recorded (None: in memory, for this process only)."""

    def __init__(self, api: OrchestratorAPI, state: StateStore | None = None) -> None:
        self._api = api
        self._commands = Commands(api, state)

    async def submit(self, op_id: str, op: OpRequest) -> None:
        if (command := control_command(op.plan)) is not None:
            await self._commands.run(op_id, command)
            return
        workflow = op.plan.workflow
        try:
            if is_sliceable(WorkflowSpec, workflow):  # a big one: a slice at a time
                stepped = await validate_in_steps(WorkflowSpec, workflow)
                assert isinstance(stepped, WorkflowSpec)
                spec = stepped
            else:
                spec = WorkflowSpec.model_validate(workflow)
        except ValidationError as exc:
            raise InvalidInput(f"the op's workflow is not a workflow: {exc}") from None
        await self._api.submit(spec, workflow_id=op_id)

    async def outcome(self, op_id: str) -> RunState | None:
        if (commanded := await self._commands.outcome(op_id)) is not None:
            return _commanded(commanded)
        try:
            view = await self._api.get(op_id)
        except NotFound:
            return None
        return _DONE.get(view.state, RunState.RUNNING)

    async def wait(self, op_id: str) -> RunState:
        if (commanded := await self._commands.wait(op_id)) is not None:
            return _commanded(commanded)
        view = await self._api.wait(op_id, timeout_s=None)
        return _DONE.get(view.state, RunState.RUNNING)


def _commanded(commanded: Commanded) -> RunState:
    if commanded.state not in _DONE:
        return RunState.RUNNING
    return RunState.SUCCEEDED if commanded.state in commanded.goal else RunState.FAILED
