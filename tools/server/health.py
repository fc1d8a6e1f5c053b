"""`server.refresh`: observe what really runs on servers and correct the inventory (drift).

The inventory says what the last workflow left behind; a process can die after it. A
refresh submits a small probe workflow (one `server.probe` task per server, run by the
orchestrator, which owns the providers), waits for it, and answers the drift: what the
inventory said against what was observed. The inventory then holds the observation,
with its time, for `server get` and `taskserv list`.
"""

from __future__ import annotations

from typing import Any

from pydantic import Field

from daemons.common.inventory import DELETED, Inventory
from daemons.common.state import StateStore
from daemons.orchestrator.model import WorkflowState
from daemons.orchestrator.provisioning.templates import server_refresh_workflow
from registry import ContractCase, RestAlias, Risk, StrictModel, ToolContext, ToolSpec
from registry.errors import Unavailable
from tools.server.registration import ServerName
from tools.workflow.submission import WAIT_TIMEOUT_S, finish, orchestrator


class RefreshInput(StrictModel):
    names: list[ServerName] | None = Field(
        default=None, max_length=100, description="Servers to probe (all but deleted ones)"
    )
    wait_timeout_s: float = Field(default=WAIT_TIMEOUT_S, gt=0, le=3600)


class Drift(StrictModel):
    server: str
    taskserv: str | None = Field(description="None: the server itself")
    recorded: str = Field(description="What the inventory said")
    observed: str = Field(description="What the probe saw (now in the inventory)")
    detail: str | None = None


class ServerHealth(StrictModel):
    server: str
    status: str = Field(description="Observed")
    checked_at: str | None = Field(description="None: nothing of ours runs there to probe")
    taskservs: dict[str, str] = Field(description="Observed status per taskserv")


class Refresh(StrictModel):
    workflow_id: str | None = Field(description="The probe workflow (None: no servers)")
    servers: list[ServerHealth]
    drift: list[Drift] = Field(description="Every difference found (and corrected)")


async def refresh(args: RefreshInput, ctx: ToolContext) -> Refresh:
    inventory = Inventory(await ctx.resource(StateStore))
    if args.names is None:
        names = [row["name"] for row in await inventory.list() if row.get("status") != DELETED]
    else:
        names = [(await inventory.get(name))["name"] for name in args.names]  # NotFound early
    if not names:
        return Refresh(workflow_id=None, servers=[], drift=[])
    api = await orchestrator(ctx)
    view = await api.submit(server_refresh_workflow(names))
    view = await finish(api, view, ctx, True, args.wait_timeout_s)
    if view.state is not WorkflowState.SUCCEEDED:
        raise Unavailable(
            f"the probe workflow {view.id} is {view.state}: {view.reason or 'not finished'}; "
            f"`prvng task list --workflow-id {view.id}` shows why",
            details={"workflow_id": view.id, "state": view.state.value},
        )
    results = [task.result or {} for task in await api.tasks(view.id)]
    return Refresh(
        workflow_id=view.id,
        servers=[_health(result) for result in results],
        drift=[drift for result in results for drift in _drift(result)],
    )


def _health(result: dict[str, Any]) -> ServerHealth:
    return ServerHealth(
        server=result["server"],
        status=result["observed"],
        checked_at=result.get("checked_at"),
        taskservs={t["name"]: t["observed"] for t in result.get("taskservs", [])},
    )


def _drift(result: dict[str, Any]) -> list[Drift]:
    found = []
    if result["recorded"] != result["observed"]:
        found.append(
            Drift(
                server=result["server"],
                taskserv=None,
                recorded=result["recorded"],
                observed=result["observed"],
            )
        )
    for t in result.get("taskservs", []):
        if t["recorded"] != t["observed"]:
            found.append(
                Drift(
                    server=result["server"],
                    taskserv=t["name"],
                    recorded=t["recorded"],
                    observed=t["observed"],
                    detail=t.get("detail") or None,
                )
            )
    return found


TOOLS = [
    ToolSpec(
        name="server.refresh",
        summary="Probe servers and their taskservs; report and record drift from the inventory",
        description=(
            "Runs each installed taskserv's health check once (through a small probe "
            "workflow on the orchestrator) and checks each local server's sandbox; the "
            "inventory then says what was observed, with `checked_at`. `server create` "
            "converges drifted servers back."
        ),
        input_model=RefreshInput,
        output_model=Refresh,
        handler=refresh,
        permission="server:write",
        risk=Risk.WRITE,
        idempotent=True,
        rest=RestAlias("POST", "/v1/servers/refresh"),
        tags=("server", "inventory"),
        volatile_paths=("workflow_id", "servers.*.checked_at"),
        cases=(
            ContractCase("nothing to probe", {}),
            ContractCase("unknown server", {"names": ["ghost-1"]}, expect="not_found"),
        ),
    ),
]
