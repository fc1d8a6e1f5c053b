"""`taskserv.create|list|delete`: install, list and remove taskservs on servers."""

from __future__ import annotations

import asyncio
from typing import Any

from pydantic import Field

from daemons.common.inventory import Inventory
from daemons.common.settings import Settings
from daemons.common.state import StateStore
from daemons.ncl_sync import ConfigCache
from daemons.orchestrator.provisioning.taskservs import TASKSERV_NAME, Catalog, list_taskservs
from daemons.orchestrator.provisioning.templates import (
    taskserv_create_workflow,
    taskserv_delete_workflow,
)
from daemons.orchestrator.views import WorkflowView
from registry import (
    Call,
    ContractCase,
    RateClass,
    RestAlias,
    Risk,
    StrictModel,
    ToolContext,
    ToolSpec,
)
from tools.plans import Plan, WorkflowOrPlan, plan_spec
from tools.server.lifecycle import LAB_CONFIG
from tools.server.registration import ServerName
from tools.workflow.submission import (
    FOLLOW_WORKFLOW,
    WORKFLOW_VOLATILE,
    SubmitOptions,
    op_params,
    submit,
)

TaskservName = Field(pattern=TASKSERV_NAME.pattern, description="Catalog name")


class TaskservInput(SubmitOptions):
    server: ServerName
    taskserv: str = TaskservName


class CreateInput(TaskservInput):
    settings: dict[str, Any] = Field(
        default_factory=dict, description="Overrides of the taskserv's settings (e.g. port)"
    )


class ListInput(StrictModel):
    server: ServerName | None = Field(default=None, description="Only this server's taskservs")


class CatalogEntry(StrictModel):
    name: str
    description: str
    version: str
    settings: dict[str, Any] = Field(description="Settings with their defaults")


class Installed(StrictModel):
    server: str
    name: str
    status: str = Field(description="As last recorded or observed (see checked_at)")
    checked_at: str | None = Field(description="Last probe (server.refresh); None: never")
    detail: str | None = Field(description="Why the last probe failed")
    settings: dict[str, Any]


class TaskservList(StrictModel):
    available: list[CatalogEntry] = Field(description="The catalog")
    installed: list[Installed] = Field(description="Taskservs on servers of the inventory")


async def create(args: CreateInput, ctx: ToolContext) -> WorkflowView | Plan:
    settings = await ctx.resource(Settings)
    spec = await asyncio.to_thread(
        taskserv_create_workflow,
        args.server,
        args.taskserv,
        args.settings,
        catalog=Catalog(settings.config_dir, await ctx.resource(ConfigCache)),
    )
    if args.plan:
        return await plan_spec("taskserv.create", spec, args.id, ctx)
    return await submit(ctx, spec, args, op_type="taskserv.create", params=op_params(args))


async def delete(args: TaskservInput, ctx: ToolContext) -> WorkflowView | Plan:
    spec = taskserv_delete_workflow(args.server, args.taskserv)
    if args.plan:
        return await plan_spec("taskserv.delete", spec, args.id, ctx)
    return await submit(
        ctx, spec, args, op_type="taskserv.delete", params=op_params(args), risk="destructive"
    )


async def list_all(args: ListInput, ctx: ToolContext) -> TaskservList:
    settings = await ctx.resource(Settings)
    catalog = await asyncio.to_thread(
        list_taskservs, Catalog(settings.config_dir, await ctx.resource(ConfigCache))
    )
    inventory = Inventory(await ctx.resource(StateStore))
    servers = [await inventory.get(args.server)] if args.server else await inventory.list()
    installed = [
        Installed(
            server=s["name"],
            name=t["name"],
            status=t["status"],
            checked_at=t.get("checked_at"),
            detail=t.get("detail"),
            settings=t["settings"],
        )
        for s in servers
        for t in s.get("taskservs", [])
    ]
    available = [
        CatalogEntry(name=t.name, description=t.description, version=t.version, settings=t.defaults)
        for t in catalog
    ]
    return TaskservList(available=available, installed=installed)


_LAB_1 = Call(
    "server.create", {"config": LAB_CONFIG, "names": ["lab-1"], "id": "c-ts-pre", "wait": True}
)

TOOLS = [
    ToolSpec(
        name="taskserv.create",
        rate_class=RateClass.EXEC,
        summary="Install a taskserv on a server and check its health (a workflow)",
        input_model=CreateInput,
        output_model=WorkflowOrPlan,
        handler=create,
        follow=FOLLOW_WORKFLOW,
        permission="taskserv:write",
        risk=Risk.WRITE,
        rest=RestAlias("POST", "/v1/taskservs/create"),
        compat=(RestAlias("POST", "/workflows/taskserv/create"),),
        tags=("taskserv", "workflow"),
        volatile_paths=WORKFLOW_VOLATILE,
        cases=(
            ContractCase(
                "kv-store on lab-1",
                {"server": "lab-1", "taskserv": "kv-store", "id": "c-tc", "wait": True},
                setup=(_LAB_1,),
            ),
            ContractCase(
                "unknown taskserv", {"server": "lab-1", "taskserv": "nope"}, expect="not_found"
            ),
            ContractCase(
                "plan", {"server": "lab-1", "taskserv": "kv-store", "plan": True}, setup=(_LAB_1,)
            ),
            ContractCase(
                "bad setting",
                {"server": "lab-1", "taskserv": "kv-store", "settings": {"max_value_bytes": 0}},
                expect="invalid_input",
            ),
        ),
    ),
    ToolSpec(
        name="taskserv.list",
        summary="List the taskserv catalog and the taskservs installed on servers",
        input_model=ListInput,
        output_model=TaskservList,
        handler=list_all,
        permission="taskserv:read",
        risk=Risk.READ,
        idempotent=True,
        rest=RestAlias("GET", "/v1/taskservs"),
        tags=("taskserv",),
        cases=(
            ContractCase("catalog and installed", {}),
            ContractCase("unknown server", {"server": "ghost-1"}, expect="not_found"),
        ),
    ),
    ToolSpec(
        name="taskserv.delete",
        rate_class=RateClass.EXEC,
        summary="Remove a taskserv from a server (a workflow)",
        input_model=TaskservInput,
        output_model=WorkflowOrPlan,
        handler=delete,
        follow=FOLLOW_WORKFLOW,
        permission="taskserv:write",
        risk=Risk.DESTRUCTIVE,
        rest=RestAlias("POST", "/v1/taskservs/delete"),
        compat=(RestAlias("POST", "/workflows/taskserv/delete"),),
        tags=("taskserv", "workflow"),
        volatile_paths=WORKFLOW_VOLATILE,
        cases=(
            ContractCase(
                "installed before",
                {"server": "lab-1", "taskserv": "kv-store", "id": "c-td", "wait": True},
                setup=(_LAB_1,),
            ),
            ContractCase(
                "bad name", {"server": "Lab", "taskserv": "kv-store"}, expect="invalid_input"
            ),
            ContractCase(
                "plan", {"server": "lab-1", "taskserv": "kv-store", "plan": True}, setup=(_LAB_1,)
            ),
        ),
    ),
]
