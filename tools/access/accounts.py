"""`user.create|list|get|disable`, `role.assign|revoke` and `whoami`.

Managing users is an admin's (`identity:admin`); `whoami` is everyone's (`self:read`).
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import Field

from daemons.common.identity import BUILTIN_ROLES, IdentityStore, check_role
from registry import Call, ContractCase, RestAlias, Risk, StrictModel, Target, ToolContext, ToolSpec
from registry.resources import Resources

UserName = Annotated[str, Field(pattern=r"^[a-z][a-z0-9_.-]{0,63}$", description="User name")]
RoleName = Annotated[str, Field(pattern=r"^[a-z][a-z0-9_-]{0,31}$", description="Role name")]


class User(StrictModel):
    name: str
    roles: list[str]
    disabled: bool
    created_at: str
    created_by: str


class UserList(StrictModel):
    users: list[User]


class CreateInput(StrictModel):
    name: UserName
    roles: list[RoleName] = Field(
        default_factory=lambda: ["viewer"],
        max_length=16,
        description=f"Built-in roles: {', '.join(BUILTIN_ROLES)}; any other name is custom",
    )


class NameInput(StrictModel):
    name: UserName


class NoInput(StrictModel):
    pass


class RoleInput(StrictModel):
    user: UserName
    role: RoleName


class WhoAmI(StrictModel):
    id: str
    roles: list[str]
    kind: str
    credential_id: str | None
    scopes: list[str]


async def identities(ctx: ToolContext) -> IdentityStore:
    return await ctx.resource(IdentityStore)


async def user_target(args: Any, resources: Resources) -> list[Target]:
    """The user a call acts on (by its `name` or `user` field)."""
    name = getattr(args, "user", None) or getattr(args, "name", None)
    return [Target("user", str(name))] if name else []


async def create_user(args: CreateInput, ctx: ToolContext) -> User:
    store = await identities(ctx)
    return User(**await store.create_user(args.name, list(args.roles), ctx.principal.id))


async def list_users(args: NoInput, ctx: ToolContext) -> UserList:
    return UserList(users=[User(**u) for u in await (await identities(ctx)).users()])


async def get_user(args: NameInput, ctx: ToolContext) -> User:
    return User(**await (await identities(ctx)).user(args.name))


async def disable_user(args: NameInput, ctx: ToolContext) -> User:
    return User(**await (await identities(ctx)).update_user(args.name, disabled=True))


async def assign_role(args: RoleInput, ctx: ToolContext) -> User:
    store = await identities(ctx)
    user = await store.user(args.user)
    roles = sorted({*user["roles"], check_role(args.role)})
    return User(**await store.update_user(args.user, roles=roles))


async def revoke_role(args: RoleInput, ctx: ToolContext) -> User:
    store = await identities(ctx)
    user = await store.user(args.user)
    roles = sorted(set(user["roles"]) - {args.role})
    return User(**await store.update_user(args.user, roles=roles))


async def whoami(args: NoInput, ctx: ToolContext) -> WhoAmI:
    p = ctx.principal
    return WhoAmI(
        id=p.id,
        roles=sorted(p.roles),
        kind=p.kind,
        credential_id=p.credential_id,
        scopes=sorted(p.scopes),
    )


_USER_VOLATILE = ("created_at",)
_ALICE = Call("user.create", {"name": "alice", "roles": ["operator"]})

TOOLS = [
    ToolSpec(
        name="user.create",
        summary="Create a user with roles (viewer, operator, approver, admin or custom)",
        input_model=CreateInput,
        output_model=User,
        handler=create_user,
        rest=RestAlias("POST", "/v1/users"),
        permission="identity:admin",
        risk=Risk.WRITE,
        targets=user_target,
        tags=("identity",),
        volatile_paths=_USER_VOLATILE,
        cases=(
            ContractCase("operator", {"name": "ops-1", "roles": ["operator"]}),
            ContractCase("bad role", {"name": "ops-2", "roles": ["Root!"]}, "invalid_input"),
            ContractCase("bootstrap name", {"name": "admin"}, "conflict"),
        ),
    ),
    ToolSpec(
        name="user.list",
        summary="List users with their roles",
        input_model=NoInput,
        output_model=UserList,
        handler=list_users,
        rest=RestAlias("GET", "/v1/users"),
        permission="identity:admin",
        idempotent=True,
        tags=("identity",),
        volatile_paths=("users.*.created_at",),
        cases=(ContractCase("all", setup=(_ALICE,)),),
    ),
    ToolSpec(
        name="user.get",
        summary="Show one user",
        input_model=NameInput,
        output_model=User,
        handler=get_user,
        rest=RestAlias("GET", "/v1/users/{name}"),
        permission="identity:admin",
        idempotent=True,
        targets=user_target,
        tags=("identity",),
        volatile_paths=_USER_VOLATILE,
        cases=(
            ContractCase("exists", {"name": "alice"}, setup=(_ALICE,)),
            ContractCase("missing", {"name": "nobody"}, "not_found"),
        ),
    ),
    ToolSpec(
        name="user.disable",
        summary="Disable a user: every key and session of theirs stops working at once",
        input_model=NameInput,
        output_model=User,
        handler=disable_user,
        rest=RestAlias("POST", "/v1/users/{name}/disable"),
        permission="identity:admin",
        risk=Risk.DESTRUCTIVE,
        idempotent=True,
        targets=user_target,
        tags=("identity",),
        volatile_paths=_USER_VOLATILE,
        cases=(
            ContractCase(
                "disables", {"name": "dis-1"}, setup=(Call("user.create", {"name": "dis-1"}),)
            ),
            ContractCase("missing", {"name": "nobody"}, "not_found"),
        ),
    ),
    ToolSpec(
        name="role.assign",
        summary="Give a user a role",
        input_model=RoleInput,
        output_model=User,
        handler=assign_role,
        rest=RestAlias("POST", "/v1/users/{user}/roles/assign"),
        permission="identity:admin",
        risk=Risk.WRITE,
        idempotent=True,
        targets=user_target,
        tags=("identity",),
        volatile_paths=_USER_VOLATILE,
        cases=(
            ContractCase("approver", {"user": "alice", "role": "approver"}, setup=(_ALICE,)),
            ContractCase("missing user", {"user": "nobody", "role": "viewer"}, "not_found"),
        ),
    ),
    ToolSpec(
        name="role.revoke",
        summary="Take a role from a user",
        input_model=RoleInput,
        output_model=User,
        handler=revoke_role,
        rest=RestAlias("POST", "/v1/users/{user}/roles/revoke"),
        permission="identity:admin",
        risk=Risk.WRITE,
        idempotent=True,
        targets=user_target,
        tags=("identity",),
        volatile_paths=_USER_VOLATILE,
        cases=(ContractCase("operator", {"user": "alice", "role": "operator"}, setup=(_ALICE,)),),
    ),
    ToolSpec(
        name="identity.whoami",
        summary="Who this call runs as: principal, roles, credential and scopes",
        input_model=NoInput,
        output_model=WhoAmI,
        handler=whoami,
        rest=RestAlias("GET", "/v1/whoami"),
        permission="self:read",
        idempotent=True,
        tags=("identity",),
        cases=(ContractCase("me"),),
    ),
]

__all__ = ["TOOLS"]
