"""`server.create` / `server.delete`: ask a provider to make a server exist, or go away
(and `server.probe`, from `server_probe`: look at what really runs there).

Both converge when run again (the engine re-runs after a crash); the provider is chosen by
name (`local` by default, others through entry points, see docs/providers.md).
"""

from __future__ import annotations

from typing import Annotated, Any, ClassVar

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from daemons.common.inventory import Inventory
from daemons.orchestrator.actions.base import ActionContext, action_error
from daemons.orchestrator.provisioning.providers import SERVER_NAME_PATTERN, get_provider
from daemons.orchestrator.provisioning.server_probe import ServerProbe
from registry.errors import NotFound, PlatformError

LabelKey = Annotated[str, StringConstraints(pattern=r"^[a-z0-9][a-z0-9_.\-/]{0,62}$")]
LabelValue = Annotated[str, StringConstraints(max_length=63)]
"""The same label rules as `server.register`, so created servers list and filter alike."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ServerCreateParams(_Strict):
    name: str = Field(pattern=SERVER_NAME_PATTERN, description="DNS label, unique per workspace")
    provider: str = Field(default="local", min_length=1, max_length=64)
    labels: dict[LabelKey, LabelValue] = Field(default_factory=dict, max_length=32)
    plan: str | None = Field(default=None, max_length=64, description="Size/flavour, if any")
    options: dict[str, Any] = Field(default_factory=dict, description="Provider-specific")


class ServerDeleteParams(_Strict):
    name: str = Field(pattern=SERVER_NAME_PATTERN)
    provider: str | None = Field(default=None, description="Default: the inventory's, else local")


class ServerCreate:
    """Create (or converge on) a server with its provider and record it in the inventory."""

    name: ClassVar[str] = "server.create"
    params_model: ClassVar[type[BaseModel]] = ServerCreateParams

    async def run(self, params: BaseModel, ctx: ActionContext) -> dict[str, Any]:
        assert isinstance(params, ServerCreateParams)
        options = {**params.options, "labels": params.labels}
        if params.plan is not None:
            options["plan"] = params.plan
        try:
            provider = get_provider(params.provider, ctx.settings, ctx.state)
            return await provider.create_server(params.name, options, ctx)
        except PlatformError as exc:
            raise action_error(exc) from None


class ServerDelete:
    """Delete a server (stopping what runs on it); a server already gone is fine."""

    name: ClassVar[str] = "server.delete"
    params_model: ClassVar[type[BaseModel]] = ServerDeleteParams

    async def run(self, params: BaseModel, ctx: ActionContext) -> dict[str, Any]:
        assert isinstance(params, ServerDeleteParams)
        try:
            provider = get_provider(await _provider_of(params, ctx), ctx.settings, ctx.state)
            return await provider.delete_server(params.name, ctx)
        except PlatformError as exc:
            raise action_error(exc) from None


async def _provider_of(params: ServerDeleteParams, ctx: ActionContext) -> str:
    if params.provider is not None:
        return params.provider
    if ctx.state is None:
        return "local"
    try:
        return str((await Inventory(ctx.state).get(params.name)).get("provider") or "local")
    except NotFound:
        return "local"


ACTIONS = (ServerCreate, ServerDelete, ServerProbe)
