"""`secret.set|list|delete`: the secrets tasks reference by name (`{"secret": "name"}`).

Values go into the 0600 store under PRVNG_HOME/secrets/ and never come back out through
a tool: `secret.list` gives names and times. `secret.set`'s value is left out of the
audit record's args digest.
"""

from __future__ import annotations

import asyncio
from typing import Annotated

from pydantic import Field, SecretStr, StringConstraints

from daemons.common.secret_store import MAX_VALUE_BYTES, SECRET_NAME_PATTERN, SecretStore
from daemons.common.settings import Settings
from registry import Call, ContractCase, RestAlias, Risk, StrictModel, ToolContext, ToolSpec

SecretName = Annotated[
    str,
    StringConstraints(pattern=SECRET_NAME_PATTERN),
    Field(description="1-128 of A-Z, a-z, 0-9, '_', '.', '-'"),
]


class SetInput(StrictModel):
    name: SecretName
    value: SecretStr = Field(
        min_length=1, max_length=MAX_VALUE_BYTES, description="Stored, never shown again"
    )


class NameInput(StrictModel):
    name: SecretName


class NoInput(StrictModel):
    pass


class SecretEntry(StrictModel):
    name: str
    updated_at: str


class SetOutput(SecretEntry):
    created: bool = Field(description="False when an existing value was replaced")


class SecretList(StrictModel):
    secrets: list[SecretEntry]


class Deleted(StrictModel):
    name: str
    deleted: bool


async def _store(ctx: ToolContext) -> SecretStore:
    return SecretStore(await ctx.resource(Settings))


async def set_secret(args: SetInput, ctx: ToolContext) -> SetOutput:
    store = await _store(ctx)
    info, created = await asyncio.to_thread(store.set, args.name, args.value.get_secret_value())
    return SetOutput(name=info.name, updated_at=info.updated_at, created=created)


async def list_secrets(args: NoInput, ctx: ToolContext) -> SecretList:
    store = await _store(ctx)
    found = await asyncio.to_thread(store.list)
    return SecretList(secrets=[SecretEntry(name=s.name, updated_at=s.updated_at) for s in found])


async def delete_secret(args: NameInput, ctx: ToolContext) -> Deleted:
    store = await _store(ctx)
    await asyncio.to_thread(store.delete, args.name)
    return Deleted(name=args.name, deleted=True)


def _set(name: str) -> Call:
    return Call("secret.set", {"name": name, "value": f"value-of-{name}"})


TOOLS = [
    ToolSpec(
        name="secret.set",
        summary='Store a secret that task params can reference as {"secret": name}',
        description=(
            "Writes the value to PRVNG_HOME/secrets/<name> (0600); tasks resolve it when "
            "they run, so it never reaches journals, logs, events, views or the audit log."
        ),
        input_model=SetInput,
        output_model=SetOutput,
        handler=set_secret,
        permission="secret:write",
        risk=Risk.WRITE,
        idempotent=True,
        rest=RestAlias("PUT", "/v1/secrets/{name}"),
        tags=("secret",),
        volatile_paths=("updated_at",),
        secret_fields=("value",),
        cases=(
            ContractCase("stores", {"name": "c-set", "value": "hunter2"}),
            ContractCase("bad name", {"name": "../x", "value": "v"}, expect="invalid_input"),
            ContractCase("empty value", {"name": "c-empty", "value": ""}, expect="invalid_input"),
        ),
    ),
    ToolSpec(
        name="secret.list",
        summary="List secret names and when each was set (never their values)",
        input_model=NoInput,
        output_model=SecretList,
        handler=list_secrets,
        permission="secret:read",
        risk=Risk.READ,
        idempotent=True,
        rest=RestAlias("GET", "/v1/secrets"),
        tags=("secret",),
        volatile_paths=("secrets.*.updated_at",),
        cases=(ContractCase("names only", {}, setup=(_set("c-list-a"), _set("c-list-b"))),),
    ),
    ToolSpec(
        name="secret.delete",
        summary="Delete a secret (tasks that reference it then fail with its name)",
        input_model=NameInput,
        output_model=Deleted,
        handler=delete_secret,
        permission="secret:write",
        risk=Risk.DESTRUCTIVE,
        rest=RestAlias("DELETE", "/v1/secrets/{name}"),
        tags=("secret",),
        cases=(
            ContractCase("deletes", {"name": "c-del"}, setup=(_set("c-del"),)),
            ContractCase("missing", {"name": "c-del-none"}, expect="not_found"),
        ),
    ),
]
