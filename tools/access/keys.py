"""`apikey.create|list|revoke`: API keys of a user, shown once, stored as a hash.

Anyone may manage their own keys (`self:*`); only an admin another user's (the
`domain:self` forbid in the policies). A key acts with its user's roles, so minting a
key never grants more than its user has; scopes narrow it further.
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import Field

from daemons.common.identity import IdentityStore
from registry import Call, ContractCase, RestAlias, Risk, StrictModel, Target, ToolContext, ToolSpec
from registry.errors import NotFound
from registry.resources import Resources
from tools.access.accounts import UserName

Scope = Annotated[str, Field(pattern=r"^[a-z*][a-z0-9_.*]{0,63}$")]


class ApiKey(StrictModel):
    key_id: str
    user: str
    name: str
    scopes: list[str]
    created_at: str
    expires_at: str | None = None
    revoked_at: str | None = None
    last_used_at: str | None = None


class CreatedKey(ApiKey):
    key: str = Field(description="The key itself: shown this once, only its hash is kept")


class KeyList(StrictModel):
    keys: list[ApiKey]


class CreateInput(StrictModel):
    user: UserName | None = Field(default=None, description="Whose key (default: yours)")
    name: str = Field(default="", max_length=64, description="What the key is for")
    scopes: list[Scope] = Field(
        default_factory=list, max_length=32, description="Tool globs it is limited to"
    )
    ttl_s: int | None = Field(default=None, gt=0, le=366 * 86400, description="Expires after")


class ListInput(StrictModel):
    user: UserName | None = Field(default=None, description="Whose keys (default: yours)")


class RevokeInput(StrictModel):
    key_id: str = Field(pattern=r"^[0-9a-f]{12}$")


async def _owner_target(args: Any, resources: Resources) -> list[Target]:
    return [Target("user", args.user)] if args.user else []


async def _key_target(args: RevokeInput, resources: Resources) -> list[Target]:
    try:
        record = await (await resources.get(IdentityStore)).key(args.key_id)
    except NotFound:
        return []
    return [Target("user", record["user"])]


async def create_key(args: CreateInput, ctx: ToolContext) -> CreatedKey:
    store = await ctx.resource(IdentityStore)
    user = args.user or ctx.principal.id
    await store.user(user)
    key, record = await store.create_key(user, args.name, list(args.scopes), args.ttl_s)
    return CreatedKey(key=key, **record)


async def list_keys(args: ListInput, ctx: ToolContext) -> KeyList:
    store = await ctx.resource(IdentityStore)
    rows = await store.keys(args.user or ctx.principal.id)
    return KeyList(keys=[ApiKey(**row) for row in rows])


async def revoke_key(args: RevokeInput, ctx: ToolContext) -> ApiKey:
    return ApiKey(**await (await ctx.resource(IdentityStore)).revoke_key(args.key_id))


_BOB = Call("user.create", {"name": "bob", "roles": ["operator"]})
_KEY_VOLATILE = ("key_id", "key", "created_at", "expires_at", "last_used_at", "revoked_at")

TOOLS = [
    ToolSpec(
        name="apikey.create",
        summary="Create an API key for a user (yours by default); it is shown once",
        input_model=CreateInput,
        output_model=CreatedKey,
        handler=create_key,
        rest=RestAlias("POST", "/v1/apikeys"),
        permission="self:write",
        risk=Risk.WRITE,
        targets=_owner_target,
        tags=("identity",),
        volatile_paths=_KEY_VOLATILE,
        cases=(
            ContractCase("for bob", {"user": "bob", "scopes": ["server.*"]}, setup=(_BOB,)),
            ContractCase("no such user", {"user": "nobody"}, "not_found"),
        ),
    ),
    ToolSpec(
        name="apikey.list",
        summary="List a user's API keys (never the keys themselves)",
        input_model=ListInput,
        output_model=KeyList,
        handler=list_keys,
        rest=RestAlias("GET", "/v1/apikeys"),
        permission="self:read",
        idempotent=True,
        targets=_owner_target,
        tags=("identity",),
        volatile_paths=tuple(f"keys.*.{f}" for f in _KEY_VOLATILE),
        cases=(ContractCase("bob's", {"user": "bob"}, setup=(_BOB,)),),
    ),
    ToolSpec(
        name="apikey.revoke",
        summary="Revoke an API key: it stops working at once",
        input_model=RevokeInput,
        output_model=ApiKey,
        handler=revoke_key,
        rest=RestAlias("POST", "/v1/apikeys/{key_id}/revoke"),
        permission="self:write",
        risk=Risk.DESTRUCTIVE,
        idempotent=True,
        targets=_key_target,
        tags=("identity",),
        cases=(
            ContractCase("unknown", {"key_id": "0123456789ab"}, "not_found"),
            ContractCase("malformed", {"key_id": "xyz"}, "invalid_input"),
        ),
    ),
]

__all__ = ["TOOLS"]
