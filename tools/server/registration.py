"""`server.register|list|get|remove`: the workspace's server inventory."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import Field, StringConstraints

from daemons.common.inventory import DELETED, Inventory
from daemons.common.state import StateStore
from registry import Call, ContractCase, RestAlias, Risk, StrictModel, ToolContext, ToolSpec

ServerName = Annotated[
    str,
    StringConstraints(pattern=r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$"),
    Field(description="DNS-label name: lowercase letters, digits and '-', at most 63"),
]
LabelKey = Annotated[str, StringConstraints(pattern=r"^[a-z0-9][a-z0-9_.\-/]{0,62}$")]
LabelValue = Annotated[str, StringConstraints(max_length=63)]


class InstalledTaskserv(StrictModel):
    name: str
    settings: dict[str, Any] = Field(default_factory=dict)
    status: str = Field(description="installing, running, unhealthy, failed or down")
    checked_at: str | None = Field(default=None, description="Last probe (server.refresh)")
    detail: str | None = Field(default=None, description="Why the last probe failed")


class Server(StrictModel):
    name: ServerName
    provider: str
    address: str | None = None
    labels: dict[str, str]
    status: str
    registered_at: str
    sandbox: str | None = Field(default=None, description="Local provider: its directory")
    taskservs: list[InstalledTaskserv] = Field(default_factory=list)
    checked_at: str | None = Field(default=None, description="Last probe (server.refresh)")


class RegisterInput(StrictModel):
    name: ServerName
    provider: Literal["local"] = Field(default="local", description="Who runs the server")
    address: str | None = Field(default=None, max_length=255, description="Host or IP")
    labels: dict[LabelKey, LabelValue] = Field(default_factory=dict, max_length=32)


class NameInput(StrictModel):
    name: ServerName


class ListInput(StrictModel):
    provider: str | None = Field(default=None, description="Only servers of this provider")
    labels: dict[LabelKey, LabelValue] = Field(
        default_factory=dict, description="Only servers carrying all these labels"
    )
    all: bool = Field(default=False, description="Include deleted servers")
    limit: int = Field(default=100, ge=1, le=1000)
    offset: int = Field(default=0, ge=0)


class ServerList(StrictModel):
    servers: list[Server]
    total: int = Field(description="Matching servers before limit/offset")


class Removed(StrictModel):
    name: str
    removed: bool


async def _inventory(ctx: ToolContext) -> Inventory:
    return Inventory(await ctx.resource(StateStore))


async def register(args: RegisterInput, ctx: ToolContext) -> Server:
    fields = args.model_dump(exclude={"name"})
    record = await (await _inventory(ctx)).register(args.name, {**fields, "status": "registered"})
    return Server.model_validate(record)


async def list_servers(args: ListInput, ctx: ToolContext) -> ServerList:
    rows = [
        row
        for row in await (await _inventory(ctx)).list()
        if (args.all or row.get("status") != DELETED)
        and (args.provider is None or row.get("provider") == args.provider)
        and all(row.get("labels", {}).get(k) == v for k, v in args.labels.items())
    ]
    page = rows[args.offset : args.offset + args.limit]
    return ServerList(servers=[Server.model_validate(r) for r in page], total=len(rows))


async def get(args: NameInput, ctx: ToolContext) -> Server:
    return Server.model_validate(await (await _inventory(ctx)).get(args.name))


async def remove(args: NameInput, ctx: ToolContext) -> Removed:
    await (await _inventory(ctx)).remove(args.name)
    return Removed(name=args.name, removed=True)


def _reg(name: str, **labels: str) -> Call:
    return Call("server.register", {"name": name, "labels": labels})


TOOLS = [
    ToolSpec(
        name="server.register",
        summary="Add an existing server to the inventory (a deleted server's name is free)",
        input_model=RegisterInput,
        output_model=Server,
        handler=register,
        permission="server:write",
        risk=Risk.WRITE,
        rest=RestAlias("POST", "/v1/servers"),
        tags=("inventory",),
        volatile_paths=("registered_at",),
        cases=(
            ContractCase("registers", {"name": "reg-1", "labels": {"env": "dev"}}),
            ContractCase("duplicate", {"name": "reg-2"}, expect="conflict", setup=(_reg("reg-2"),)),
            ContractCase("bad name", {"name": "Not_A_Name"}, expect="invalid_input"),
        ),
    ),
    ToolSpec(
        name="server.list",
        summary="List servers in the inventory (deleted ones with `all`), by provider or labels",
        input_model=ListInput,
        output_model=ServerList,
        handler=list_servers,
        permission="server:read",
        risk=Risk.READ,
        idempotent=True,
        rest=RestAlias("GET", "/v1/servers"),
        tags=("inventory",),
        volatile_paths=("servers.*.registered_at",),
        cases=(
            ContractCase(
                "by label",
                {"labels": {"team": "lst"}},
                setup=(_reg("lst-1", team="lst"), _reg("lst-2", team="lst"), _reg("lst-3")),
            ),
            ContractCase("bad limit", {"limit": 0}, expect="invalid_input"),
            ContractCase("offset as a boolean", {"offset": False}, expect="invalid_input"),
            ContractCase("limit 5.0 (a JSON Schema integer)", {"limit": 5.0, "provider": "none"}),
        ),
    ),
    ToolSpec(
        name="server.get",
        summary="Show one server of the inventory",
        input_model=NameInput,
        output_model=Server,
        handler=get,
        permission="server:read",
        risk=Risk.READ,
        idempotent=True,
        rest=RestAlias("GET", "/v1/servers/{name}"),
        tags=("inventory",),
        volatile_paths=("registered_at",),
        cases=(
            ContractCase("found", {"name": "get-1"}, setup=(_reg("get-1", env="dev"),)),
            ContractCase("missing", {"name": "get-none"}, expect="not_found"),
        ),
    ),
    ToolSpec(
        name="server.remove",
        summary="Remove a server from the inventory (the machine itself is untouched)",
        input_model=NameInput,
        output_model=Removed,
        handler=remove,
        permission="server:write",
        risk=Risk.DESTRUCTIVE,
        idempotent=False,
        rest=RestAlias("DELETE", "/v1/servers/{name}"),
        tags=("inventory",),
        cases=(
            ContractCase("removes", {"name": "rm-1"}, setup=(_reg("rm-1"),)),
            ContractCase("missing", {"name": "rm-none"}, expect="not_found"),
        ),
    ),
]
