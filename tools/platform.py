"""`platform.health` and `platform.info`: is it up, and what is it."""

from __future__ import annotations

import os
import platform as host
import time
from functools import cache
from importlib.metadata import PackageNotFoundError, version
from typing import Literal

from pydantic import Field

from daemons.common.settings import Settings
from daemons.common.state import StateStore
from registry import ContractCase, RestAlias, Risk, StrictModel, ToolContext, ToolSpec
from tools.workflow.orchestrator import OrchestratorHandle

_STARTED = time.monotonic()


@cache
def platform_version() -> str:
    try:
        return version("provisioning-platform")
    except PackageNotFoundError:
        return "0+unknown"


class NoInput(StrictModel):
    pass


class ComponentHealth(StrictModel):
    ready: bool
    detail: str = ""


class HealthOutput(StrictModel):
    status: Literal["ok", "degraded"]
    components: dict[str, ComponentHealth]


async def _state_health(ctx: ToolContext) -> ComponentHealth:
    try:
        store = await ctx.resource(StateStore)
        await store.query("RETURN 1")
    except Exception as exc:  # any failure means "not ready"; the detail says why
        return ComponentHealth(ready=False, detail=str(exc))
    return ComponentHealth(ready=True, detail=store.url.split("://", 1)[0])


def _orchestrator_health(ctx: ToolContext) -> ComponentHealth:
    """The engine's health when it runs here; a one-shot process starts it on first use."""
    if not ctx.resources.is_open(OrchestratorHandle):
        return ComponentHealth(ready=True, detail="starts on first use")
    ready, detail = ctx.resources.peek(OrchestratorHandle).status()
    return ComponentHealth(ready=ready, detail=detail)


async def health(args: NoInput, ctx: ToolContext) -> HealthOutput:
    components = {
        "registry": ComponentHealth(ready=True, detail=f"{len(ctx.registry)} tools"),
        "state": await _state_health(ctx),
        "orchestrator": _orchestrator_health(ctx),
    }
    ready = all(c.ready for c in components.values())
    return HealthOutput(status="ok" if ready else "degraded", components=components)


class InfoOutput(StrictModel):
    name: str = "provisioning-platform"
    version: str
    python: str
    home: str = Field(description="PRVNG_HOME: journals, state, keys, audit")
    config_dir: str = Field(description="The workspace's Nickel configuration")
    state_backend: str
    tool_count: int
    pid: int
    uptime_s: float


async def info(args: NoInput, ctx: ToolContext) -> InfoOutput:
    settings = await ctx.resource(Settings)
    return InfoOutput(
        version=platform_version(),
        python=host.python_version(),
        home=str(settings.home),
        config_dir=str(settings.config_dir),
        state_backend=settings.state_url.split("://", 1)[0],
        tool_count=len(ctx.registry),
        pid=os.getpid(),
        uptime_s=round(time.monotonic() - _STARTED, 3),
    )


TOOLS = [
    ToolSpec(
        name="platform.health",
        summary="Report whether the platform and each component are ready",
        input_model=NoInput,
        output_model=HealthOutput,
        handler=health,
        permission="platform:read",
        risk=Risk.READ,
        idempotent=True,
        rest=RestAlias("GET", "/v1/platform/health"),
        tags=("platform",),
        cases=(
            ContractCase("healthy"),
            ContractCase("rejects arguments", {"verbose": True}, expect="invalid_input"),
        ),
    ),
    ToolSpec(
        name="platform.info",
        summary="Show version, paths and backends of this platform",
        input_model=NoInput,
        output_model=InfoOutput,
        handler=info,
        permission="platform:read",
        risk=Risk.READ,
        idempotent=True,
        rest=RestAlias("GET", "/v1/platform/info"),
        tags=("platform",),
        volatile_paths=("home", "pid", "uptime_s"),
        cases=(
            ContractCase("describes itself"),
            ContractCase("rejects arguments", {"x": 1}, expect="invalid_input"),
        ),
    ),
]
