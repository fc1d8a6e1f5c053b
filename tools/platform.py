"""`platform.health`, `platform.info` and `metrics.read`: is it up, what is it, and its
counters for Prometheus (`GET /metrics` serves `metrics.read`'s text as it is)."""

from __future__ import annotations

import os
import platform as host
import time
from typing import Literal

from pydantic import Field

from daemons.common.exposition import Exposition
from daemons.common.health import HealthBoard
from daemons.common.settings import Settings
from daemons.common.version import platform_version
from registry import ContractCase, RestAlias, Risk, StrictModel, ToolContext, ToolSpec

_STARTED = time.monotonic()


class NoInput(StrictModel):
    pass


class ComponentHealth(StrictModel):
    ready: bool
    detail: str = ""


class HealthOutput(StrictModel):
    status: Literal["ok", "degraded"]
    components: dict[str, ComponentHealth]


async def health(args: NoInput, ctx: ToolContext) -> HealthOutput:
    """The same board `/health` reads: one answer, whichever way it is asked."""
    states = await (await ctx.resource(HealthBoard)).check()
    components = {
        name: ComponentHealth(ready=state.ready, detail=state.detail)
        for name, state in states.items()
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
        tool_count=len(ctx.listing().tools),
        pid=os.getpid(),
        uptime_s=round(time.monotonic() - _STARTED, 3),
    )


class MetricsOutput(StrictModel):
    exposition: str = Field(description="Every metric in Prometheus' text format")


async def read_metrics(args: NoInput, ctx: ToolContext) -> MetricsOutput:
    return MetricsOutput(exposition=(await ctx.resource(Exposition)).render())


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
    ToolSpec(
        name="metrics.read",
        summary="Read the Prometheus metrics: calls, latencies, audit and controller counters",
        input_model=NoInput,
        output_model=MetricsOutput,
        handler=read_metrics,
        permission="metrics:read",
        risk=Risk.READ,
        idempotent=True,
        rest=RestAlias("GET", "/v1/metrics"),
        tags=("platform",),
        volatile_paths=("exposition",),
        cases=(
            ContractCase("reads the exposition"),
            ContractCase("rejects arguments", {"x": 1}, expect="invalid_input"),
        ),
    ),
]
