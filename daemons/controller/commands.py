"""Control ops: the controller runs a retry or rollback of a recorded workflow.

A control op's plan is a `ControlCommand`: the command and the workflow as it stood when
it was planned. The command runs only while the workflow still stands so (its
fingerprint: state, each task's state and attempts), so what was approved is what runs,
and it cannot run twice: the first run moves the workflow. Which workflow an op commands
is recorded (`op_command:<op id>`) before the command, so a controller started after a
crash answers `outcome` and `wait` by op id, as for a submitted workflow.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from daemons.common.state import StateStore
from daemons.ops.model import ControlCommand
from daemons.orchestrator.model import WorkflowState
from daemons.orchestrator.protocol import OrchestratorAPI
from registry.canonical import sha256_digest
from registry.errors import Conflict

TABLE = "op_command"
_GOALS = {
    "retry": frozenset({WorkflowState.SUCCEEDED}),
    "rollback": frozenset({WorkflowState.ROLLED_BACK, WorkflowState.CANCELLED}),
}


@dataclass(frozen=True, slots=True)
class Commanded:
    """A command op's workflow state, and the states in which the command succeeded."""

    state: WorkflowState
    goal: frozenset[WorkflowState]


class Commands:
    def __init__(self, api: OrchestratorAPI, state: StateStore | None = None) -> None:
        self._api = api
        self._state = state
        self._known: dict[str, dict[str, Any]] = {}
        """The commands this process ran or found recorded (`wait` reads only these, so
        following a submitted workflow costs no read)."""

    async def run(self, op_id: str, command: ControlCommand) -> None:
        """Run `command` if the workflow stands as planned, else `Conflict` (nothing ran)."""
        if await self._fingerprint(command.id) != command.fingerprint():
            raise Conflict(
                f"workflow {command.id} changed since {op_id} was planned, so its "
                f"{command.command} did not run; re-plan "
                f"(`prvng workflow {command.command} --id {command.id} --plan`) and ask again",
                details={"op_id": op_id, "workflow_id": command.id},
            )
        record = {
            "workflow_id": command.id,
            "command": command.command,
            "fingerprint": sha256_digest(command.fingerprint()),
        }
        if self._state is not None:
            await self._state.upsert(TABLE, op_id, record)
        self._known[op_id] = record
        if command.command == "retry":
            await self._api.retry(command.id)
        else:
            await self._api.rollback(command.id)

    async def outcome(self, op_id: str) -> Commanded | None:
        """Where a command op's workflow stands; None when the command never ran (or
        `op_id` is no command op)."""
        record = self._known.get(op_id)
        if record is None and self._state is not None:  # after a restart (a rare path)
            record = await self._state.get(TABLE, op_id)
        if record is None:
            return None
        self._known[op_id] = record
        if sha256_digest(await self._fingerprint(record["workflow_id"])) == record["fingerprint"]:
            return None  # recorded, but the crash came before the command: not run
        view = await self._api.get(record["workflow_id"])
        return Commanded(view.state, _GOALS[record["command"]])

    async def wait(self, op_id: str) -> Commanded | None:
        """A command op's workflow once settled; None for no command op (one that ran in
        another process is known here once `outcome` found it)."""
        record = self._known.get(op_id)
        if record is None:
            return None
        view = await self._api.wait(record["workflow_id"], timeout_s=None)
        return Commanded(view.state, _GOALS[record["command"]])

    async def _fingerprint(self, workflow_id: str) -> dict[str, Any]:
        view = await self._api.get(workflow_id)
        tasks = await self._api.tasks(workflow_id)
        return {
            "state": view.state.value,
            "tasks": {t.id: [t.state.value, t.attempts] for t in tasks},
        }
