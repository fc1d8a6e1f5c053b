"""`server.probe`: look at what really runs on a server and correct the inventory.

The inventory says what the last workflow left behind; a taskserv process can die after
that. The probe checks the server's sandbox and runs each installed taskserv's health
check once (no waiting: this is an observation, not an install), records what it saw
with the time (`checked_at`, and `detail` when unhealthy), and answers the drift: what
the inventory said against what it observed. `server.create` converges it back.
"""

from __future__ import annotations

import asyncio
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict, Field

from daemons.common.inventory import Inventory
from daemons.orchestrator.actions.base import ActionContext, action_error
from daemons.orchestrator.provisioning.providers import SERVER_NAME_PATTERN, get_provider
from daemons.orchestrator.provisioning.taskserv_actions import probe_health, script_env
from daemons.orchestrator.provisioning.taskservs import catalog_for, load_taskserv
from registry.errors import NotFound, PlatformError, Unavailable
from registry.timestamps import utc_now_iso

PROBE_TIMEOUT_S = 5.0
RUNNING, DOWN, MISSING = "running", "down", "missing"
_PROBED = frozenset({"running", "unhealthy", DOWN})
"""Taskserv states worth a probe: a failed or half-done install has nothing to answer."""
_SET_HEALTH = (
    "UPDATE type::thing('server', $server) SET checked_at = $at, status = $status, "
    "taskservs = $taskservs WHERE status = 'running' RETURN AFTER"
)
"""Only while the server still runs: a delete meanwhile wins over the observation."""


class ProbeParams(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(pattern=SERVER_NAME_PATTERN)


class ServerProbe:
    """Observe one server and its taskservs; record it; answer the drift."""

    name: ClassVar[str] = "server.probe"
    params_model: ClassVar[type[BaseModel]] = ProbeParams

    async def run(self, params: BaseModel, ctx: ActionContext) -> dict[str, Any]:
        assert isinstance(params, ProbeParams)
        try:
            return await _probe(params.name, ctx)
        except PlatformError as exc:
            raise action_error(exc) from None


async def _probe(name: str, ctx: ActionContext) -> dict[str, Any]:
    if ctx.state is None:
        raise Unavailable("server.probe needs the platform state store (the inventory)")
    try:
        record = await Inventory(ctx.state).get(name)
    except NotFound:
        return {"server": name, "recorded": MISSING, "observed": MISSING, "taskservs": []}
    recorded = str(record.get("status"))
    result: dict[str, Any] = {"server": name, "recorded": recorded, "taskservs": []}
    if recorded != RUNNING or record.get("provider") != "local" or not record.get("sandbox"):
        return {**result, "observed": recorded}  # nothing of ours runs there to look at
    sandbox = get_provider("local", ctx.settings, ctx.state).sandbox(name)
    observed_server = RUNNING if sandbox.is_dir() else MISSING
    at = utc_now_iso()
    observed: dict[str, dict[str, Any]] = {}
    for entry in record.get("taskservs") or []:
        if entry.get("status") not in _PROBED:
            continue
        why = "the server's sandbox is gone"
        if observed_server == RUNNING:
            ts = await asyncio.to_thread(
                load_taskserv, catalog_for(ctx.settings), entry["name"], entry.get("settings") or {}
            )
            env = script_env(ts, sandbox, record, ctx)
            why = await probe_health(ts, sandbox, env, PROBE_TIMEOUT_S) or ""
        status = DOWN if why else RUNNING
        observed[entry["name"]] = {"status": status, "checked_at": at, "detail": why or None}
        result["taskservs"].append(
            {"name": entry["name"], "recorded": entry["status"], "observed": status, "detail": why}
        )
        ctx.log("info", f"{name}/{entry['name']}: {entry['status']} → {status} {why}\n")
    taskservs = [
        {**entry, **observed.get(entry["name"], {})} for entry in record.get("taskservs") or []
    ]
    variables = {"server": name, "at": at, "status": observed_server, "taskservs": taskservs}
    await ctx.state.query(_SET_HEALTH, variables)
    return {**result, "observed": observed_server, "checked_at": at}


ACTIONS = (ServerProbe,)
