"""`server.create` and `server.delete`: workflows that build or tear down real servers.

A server comes from the workspace config (`config/workspace.ncl` by default): the
*servers create* template creates each one through its provider, then installs its
taskservs; a failure rolls every step back.
"""

from __future__ import annotations

import asyncio
from typing import Any

from pydantic import Field

from daemons.common.inventory import Inventory
from daemons.common.settings import Settings
from daemons.common.state import StateStore
from daemons.ncl_sync import ConfigCache
from daemons.orchestrator.provisioning.taskservs import Catalog
from daemons.orchestrator.provisioning.templates import (
    server_delete_workflow,
    servers_create_workflow,
)
from daemons.orchestrator.views import WorkflowView
from registry import (
    Call,
    ContractCase,
    NotFound,
    RateClass,
    RestAlias,
    Risk,
    Target,
    ToolContext,
    ToolSpec,
)
from registry.errors import PlatformError
from registry.resources import Resources
from tools.config.nickel import evaluate
from tools.plans import Plan, WorkflowOrPlan, plan_spec
from tools.server.registration import ServerName
from tools.workflow.submission import (
    FOLLOW_WORKFLOW,
    WORKFLOW_VOLATILE,
    SubmitOptions,
    op_params,
    submit,
)

LAB_CONFIG = "examples/lab.ncl"
"""The small workspace contract cases build (no fixed ports)."""


class CreateInput(SubmitOptions):
    names: list[ServerName] | None = Field(
        default=None, description="Servers of the workspace to create (all when omitted)"
    )
    config: str = Field(
        default="workspace.ncl", max_length=512, description="Workspace file in PRVNG_CONFIG"
    )


class DeleteInput(SubmitOptions):
    names: list[ServerName] = Field(min_length=1, max_length=100)


def _server(name: str, labels: dict[str, Any]) -> Target:
    pairs = tuple(sorted((str(k), str(v)) for k, v in labels.items()))
    return Target("server", name, pairs, environment=str(labels.get("env", "")) or None)


async def _create_targets(args: CreateInput, resources: Resources) -> list[Target]:
    """The servers this call would create, with their labels from the workspace config.

    A config that cannot be read names no target; the handler then reports why."""
    settings = await resources.get(Settings)
    try:
        workspace = await evaluate(
            await resources.get(ConfigCache), settings.config_dir, args.config
        )
    except PlatformError:
        return []
    servers = workspace.get("servers", []) if isinstance(workspace, dict) else []
    wanted = set(args.names) if args.names is not None else None
    return [
        _server(str(s.get("name")), dict(s.get("labels") or {}))
        for s in servers
        if isinstance(s, dict) and (wanted is None or s.get("name") in wanted)
    ]


async def _delete_targets(args: DeleteInput, resources: Resources) -> list[Target]:
    """The servers to delete, with their labels from the inventory (none when unknown)."""
    inventory = Inventory(await resources.get(StateStore))
    targets = []
    for name in args.names:
        try:
            labels = (await inventory.get(name)).get("labels") or {}
        except PlatformError:
            labels = {}
        targets.append(_server(name, dict(labels)))
    return targets


async def create(args: CreateInput, ctx: ToolContext) -> WorkflowView | Plan:
    settings = await ctx.resource(Settings)
    workspace = await evaluate(await ctx.resource(ConfigCache), settings.config_dir, args.config)
    spec = await asyncio.to_thread(
        servers_create_workflow,
        workspace,
        args.names,
        catalog=Catalog(settings.config_dir, await ctx.resource(ConfigCache)),
    )
    if args.plan:
        return await plan_spec("server.create", spec, args.id, ctx)
    return await submit(ctx, spec, args, op_type="server.create", params=op_params(args))


async def delete(args: DeleteInput, ctx: ToolContext) -> WorkflowView | Plan:
    """Refuses names the inventory never had: deleting a typo must not look like success
    (a server deleted before stays in the inventory as `deleted`, so a repeat is fine)."""
    inventory = Inventory(await ctx.resource(StateStore))
    missing = []
    for name in dict.fromkeys(args.names):
        try:
            await inventory.get(name)
        except NotFound:
            missing.append(name)
    if missing:
        raise NotFound(
            f"no server named {', '.join(missing)} in the inventory; `prvng server list` shows it",
            details={"servers": missing},
        )
    spec = server_delete_workflow(args.names)
    if args.plan:
        return await plan_spec("server.delete", spec, args.id, ctx)
    return await submit(
        ctx, spec, args, op_type="server.delete", params=op_params(args), risk="destructive"
    )


TOOLS = [
    ToolSpec(
        name="server.create",
        rate_class=RateClass.EXEC,
        summary="Create servers of the workspace and install their taskservs (a workflow)",
        description=(
            "Submits the *servers create* workflow: one server.create task per server "
            "(through its provider; `local` makes a sandbox under PRVNG_HOME/servers), then "
            "a taskserv.install task per taskserv. Returns the workflow; pass `wait` to "
            "return when it is done. Every step is undone if one fails for good."
        ),
        input_model=CreateInput,
        output_model=WorkflowOrPlan,
        handler=create,
        follow=FOLLOW_WORKFLOW,
        permission="server:write",
        risk=Risk.WRITE,
        targets=_create_targets,
        rest=RestAlias("POST", "/v1/servers/create"),
        compat=(RestAlias("POST", "/workflows/servers/create"),),
        tags=("server", "workflow"),
        volatile_paths=WORKFLOW_VOLATILE,
        cases=(
            ContractCase(
                "lab server", {"config": LAB_CONFIG, "names": ["lab-1"], "id": "c-sc", "wait": True}
            ),
            ContractCase(
                "not in the workspace",
                {"config": LAB_CONFIG, "names": ["nope-1"]},
                expect="invalid_input",
            ),
            ContractCase("no such config", {"config": "missing.ncl"}, expect="not_found"),
            ContractCase("plan", {"config": LAB_CONFIG, "names": ["lab-1"], "plan": True}),
        ),
    ),
    ToolSpec(
        name="server.delete",
        rate_class=RateClass.EXEC,
        summary="Delete servers: stop their taskservs and remove them (a workflow)",
        input_model=DeleteInput,
        output_model=WorkflowOrPlan,
        handler=delete,
        follow=FOLLOW_WORKFLOW,
        permission="server:write",
        risk=Risk.DESTRUCTIVE,
        targets=_delete_targets,
        rest=RestAlias("POST", "/v1/servers/delete"),
        compat=(RestAlias("POST", "/workflows/servers/delete"),),
        tags=("server", "workflow"),
        volatile_paths=WORKFLOW_VOLATILE,
        cases=(
            ContractCase(
                "created before",
                {"names": ["lab-1"], "id": "c-sd", "wait": True},
                setup=(
                    Call(
                        "server.create",
                        {"config": LAB_CONFIG, "names": ["lab-1"], "id": "c-sd-pre", "wait": True},
                    ),
                ),
            ),
            ContractCase("no names", {"names": []}, expect="invalid_input"),
            ContractCase("unknown server", {"names": ["ghost"]}, expect="not_found"),
            ContractCase(
                "plan",
                {"names": ["lab-1"], "plan": True},
                setup=(
                    Call(
                        "server.create",
                        {"config": LAB_CONFIG, "names": ["lab-1"], "id": "c-sdp-pre", "wait": True},
                    ),
                ),
            ),
            ContractCase("plan, unknown server", {"names": ["ghost"], "plan": True}, "not_found"),
        ),
    ),
]
