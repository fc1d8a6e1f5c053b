"""`settings.plan`: what applying a workspace config would do, against the current state.

It is the plan `server.create --plan` answers (`tools.plans.plan_spec` on the *servers
create* workflow of the config), summed up, plus the drift that workflow leaves alone:
taskservs installed on a configured server that the config no longer lists.
"""

from __future__ import annotations

import asyncio
from collections import Counter

from pydantic import Field

from daemons.orchestrator.provisioning.taskservs import Catalog
from daemons.orchestrator.provisioning.templates import servers_create_workflow
from registry import Call, ContractCase, RestAlias, Risk, StrictModel, ToolContext, ToolSpec
from tools.plans import Change, plan_spec
from tools.server.registration import ServerName
from tools.settings.source import SourceInput, load, workspace_of


class PlanInput(SourceInput):
    names: list[ServerName] | None = Field(default=None, description="Only these servers")


class PlanOutput(StrictModel):
    source: str
    workflow: str
    changes: list[Change]
    summary: dict[str, int] = Field(description="Changes by action")
    drift: list[str] = Field(description="Installed taskservs the config no longer lists")
    digest: str = Field(description="The digest `server.create --plan` gives for it")
    state_digest: str


async def plan(args: PlanInput, ctx: ToolContext) -> PlanOutput:
    ws = await workspace_of(ctx)
    value = await load(ws, args)
    spec = await asyncio.to_thread(
        servers_create_workflow, value, args.names, catalog=Catalog(ws.config_dir, ws.cache)
    )
    answer = await plan_spec("server.create", spec, None, ctx)
    wanted = {
        (t.params["server"], t.params["taskserv"])
        for t in spec.tasks
        if t.action == "taskserv.install"
    }
    drift = sorted(
        f"{c.name}/{t['name']}"
        for c in answer.changes
        if c.kind == "server" and c.before is not None
        for t in c.before.get("taskservs") or []
        if (c.name, t.get("name")) not in wanted
    )
    counts = Counter(c.action for c in answer.changes)
    return PlanOutput(
        source=args.label,
        workflow=spec.name,
        changes=answer.changes,
        summary={a: counts.get(a, 0) for a in ("create", "update", "delete", "no-op")},
        drift=drift,
        digest=answer.digest,
        state_digest=answer.state_digest,
    )


TOOLS = [
    ToolSpec(
        name="settings.plan",
        summary="Show what applying a workspace config would create, change or leave behind",
        input_model=PlanInput,
        output_model=PlanOutput,
        handler=plan,
        permission="config:read",
        risk=Risk.READ,
        idempotent=True,
        rest=RestAlias("POST", "/v1/settings/plan"),
        tags=("settings", "config"),
        cases=(
            ContractCase("lab workspace", {"path": "examples/lab.ncl"}),
            ContractCase(
                "after creating one",
                {"path": "examples/lab.ncl"},
                setup=(
                    Call(
                        "server.create",
                        {
                            "config": "examples/lab.ncl",
                            "names": ["lab-2"],
                            "id": "c-spl",
                            "wait": True,
                        },
                    ),
                ),
            ),
            ContractCase(
                "unknown server",
                {"path": "examples/lab.ncl", "names": ["nope"]},
                expect="invalid_input",
            ),
        ),
    ),
]
