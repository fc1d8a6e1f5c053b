"""`taskserv.install` / `taskserv.remove`: run a catalog taskserv's script in a server's sandbox.

Install runs `install.sh`, then waits for the health check to pass (with a deadline), and
records `{name, settings, status}` in the server's inventory record (`taskservs`). Scripts
are idempotent, so a re-run after a crash converges. Scripts get `PRVNG_SANDBOX`,
`PRVNG_TASKSERV_DIR` (the catalog entry), `PRVNG_TASKSERV_HOME` (its files in the sandbox),
`PRVNG_PYTHON`, `PRVNG_SERVER` (and `_ADDRESS`), the task's `PRVNG_IDEMPOTENCY_KEY` and one
`PRVNG_SETTING_<NAME>` per setting.
"""

from __future__ import annotations

import asyncio
import json
import re
import sys
from pathlib import Path
from typing import Any, ClassVar

import httpx
from pydantic import BaseModel, ConfigDict, Field

from daemons.common.inventory import Inventory
from daemons.common.state import StateStore
from daemons.orchestrator.actions.base import ActionContext, ActionError, action_error
from daemons.orchestrator.actions.shell import failure, process_env, run_process
from daemons.orchestrator.provisioning.launches import LAUNCH_VAR, new_token, record_launch
from daemons.orchestrator.provisioning.providers import SERVER_NAME_PATTERN, get_provider
from daemons.orchestrator.provisioning.taskservs import (
    TASKSERV_NAME,
    CommandHealth,
    Taskserv,
    catalog_for,
    load_taskserv,
)
from registry.errors import NotFound, PlatformError, Unavailable

SCRIPT_TIMEOUT_S = 600.0
_SET_ENTRY = (
    "UPDATE type::thing('server', $server) SET taskservs = "
    "array::append((taskservs ?? [])[WHERE name != $entry.name], $entry) RETURN AFTER"
)
_DROP_ENTRY = (
    "UPDATE type::thing('server', $server) SET taskservs = "
    "(taskservs ?? [])[WHERE name != $name] RETURN AFTER"
)


class TaskservParams(BaseModel):
    model_config = ConfigDict(extra="forbid")

    server: str = Field(pattern=SERVER_NAME_PATTERN)
    taskserv: str = Field(pattern=TASKSERV_NAME.pattern)
    settings: dict[str, Any] = Field(default_factory=dict, description="Over its defaults")


def _not_retryable(message: str, **details: Any) -> ActionError:
    return ActionError(message, retryable=False, details=details)


def _state(ctx: ActionContext) -> StateStore:
    if ctx.state is None:
        raise Unavailable("taskserv actions need the platform state store (the inventory)")
    return ctx.state


async def _server(ctx: ActionContext, name: str) -> tuple[dict[str, Any], Path] | None:
    """The server's inventory record and sandbox, or None when it is gone or deleted."""
    state = _state(ctx)
    try:
        record = await Inventory(state).get(name)
    except NotFound:
        return None
    if record.get("status") in ("deleting", "deleted"):
        return None
    provider = get_provider(str(record.get("provider") or "local"), ctx.settings, state)
    return record, provider.sandbox(name)


async def _record(ctx: ActionContext, server: str, query: str, **variables: Any) -> None:
    rows = await _state(ctx).query(query, {"server": server, **variables})
    if not rows:
        raise _not_retryable(f"server {server!r} left the inventory during the task")


def script_env(
    ts: Taskserv, sandbox: Path, server: dict[str, Any], ctx: ActionContext
) -> dict[str, str]:
    extra = {
        "PRVNG_SANDBOX": str(sandbox),
        "PRVNG_SERVER": str(server["name"]),
        "PRVNG_SERVER_ADDRESS": str(server.get("address") or ""),
        "PRVNG_TASKSERV": ts.name,
        "PRVNG_TASKSERV_DIR": str(ts.directory),
        "PRVNG_TASKSERV_HOME": str(sandbox / "taskservs" / ts.name),
        "PRVNG_PYTHON": sys.executable,
    }
    for key, value in ts.settings.items():
        name = "PRVNG_SETTING_" + re.sub(r"[^A-Za-z0-9]", "_", key).upper()
        extra[name] = value if isinstance(value, str) else json.dumps(value)
    return process_env(ctx, extra)


async def _run_script(script: Path, sandbox: Path, env: dict[str, str], ctx: ActionContext) -> None:
    ctx.log("info", f"running {script} in {sandbox}\n")
    token = new_token()
    result = await run_process(
        ["/bin/sh", str(script)],
        cwd=sandbox,
        env={**env, LAUNCH_VAR: token},
        log=ctx.log,
        timeout_s=SCRIPT_TIMEOUT_S,
        on_start=lambda pid: record_launch(sandbox, token, pid),
    )
    if result.exit_code != 0:
        raise failure(f"{script.parent.name}/{script.name}", result)


async def probe_health(
    ts: Taskserv, sandbox: Path, env: dict[str, str], remaining: float
) -> str | None:
    """One health probe: None when healthy, else why not."""
    health = ts.health
    if isinstance(health, CommandHealth):
        result = await run_process(
            ["/bin/sh", "-c", health.command],
            cwd=sandbox,
            env=env,
            log=lambda _stream, _text: None,
            timeout_s=remaining,
        )
        if result.exit_code != 0:
            return f"`{health.command}` exited {result.exit_code}: {result.stderr_tail.strip()}"
        if health.expect is not None and result.stdout_tail.strip() != health.expect:
            return (
                f"`{health.command}` printed {result.stdout_tail.strip()!r}, not {health.expect!r}"
            )
        return None
    url = f"http://127.0.0.1:{ts.settings[health.port_setting]}{health.path}"
    try:
        async with httpx.AsyncClient(timeout=min(remaining, 2.0)) as client:
            status = (await client.get(url)).status_code
    except httpx.HTTPError as exc:
        return f"GET {url}: {exc or type(exc).__name__}"
    return None if status == health.status else f"GET {url} answered {status}"


async def check_health(
    ts: Taskserv, sandbox: Path, env: dict[str, str], ctx: ActionContext
) -> None:
    """Probe until healthy or the health check's deadline passes (then a retryable error)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + ts.health.timeout_s
    delay, attempts = 0.02, 0
    while True:
        attempts += 1
        why = await probe_health(ts, sandbox, env, max(deadline - loop.time(), 0.1))
        if why is None:
            ctx.log("info", f"{ts.name} healthy after {attempts} probe(s)\n")
            return
        if loop.time() + delay >= deadline:
            raise ActionError(
                f"{ts.name} on this server is not healthy after {ts.health.timeout_s:g}s: {why}",
                details={"taskserv": ts.name, "probes": attempts, "last": why},
            )
        await asyncio.sleep(delay)  # spacing readiness probes under a deadline
        delay = min(delay * 2, 0.5)


class TaskservInstall:
    """Install a taskserv on a server and wait until it is healthy."""

    name: ClassVar[str] = "taskserv.install"
    params_model: ClassVar[type[BaseModel]] = TaskservParams

    async def run(self, params: BaseModel, ctx: ActionContext) -> dict[str, Any]:
        assert isinstance(params, TaskservParams)
        try:
            return await self._install(params, ctx)
        except PlatformError as exc:
            raise action_error(exc) from None

    async def _install(self, params: TaskservParams, ctx: ActionContext) -> dict[str, Any]:
        ts = await asyncio.to_thread(
            load_taskserv, catalog_for(ctx.settings), params.taskserv, params.settings
        )
        found = await _server(ctx, params.server)
        if found is None or not found[1].is_dir():
            raise _not_retryable(
                f"server {params.server!r} does not exist (or has no sandbox); create it "
                "first with server.create",
                server=params.server,
            )
        record, sandbox = found
        entry = {"name": ts.name, "settings": ts.settings, "status": "installing"}
        await _record(ctx, params.server, _SET_ENTRY, entry=entry)
        env = script_env(ts, sandbox, record, ctx)
        try:
            await _run_script(ts.install_script, sandbox, env, ctx)
        except ActionError:
            await _record(ctx, params.server, _SET_ENTRY, entry={**entry, "status": "failed"})
            raise
        try:
            await check_health(ts, sandbox, env, ctx)
        except ActionError:
            await _record(ctx, params.server, _SET_ENTRY, entry={**entry, "status": "unhealthy"})
            raise
        await _record(ctx, params.server, _SET_ENTRY, entry={**entry, "status": "running"})
        return {"server": params.server, **entry, "status": "running"}


class TaskservRemove:
    """Remove a taskserv from a server; nothing to remove is fine."""

    name: ClassVar[str] = "taskserv.remove"
    params_model: ClassVar[type[BaseModel]] = TaskservParams

    async def run(self, params: BaseModel, ctx: ActionContext) -> dict[str, Any]:
        assert isinstance(params, TaskservParams)
        try:
            return await self._remove(params, ctx)
        except PlatformError as exc:
            raise action_error(exc) from None

    async def _remove(self, params: TaskservParams, ctx: ActionContext) -> dict[str, Any]:
        # "removed": the remove script ran; "was_installed": the inventory listed it.
        result = {
            "server": params.server,
            "name": params.taskserv,
            "removed": False,
            "was_installed": False,
        }
        found = await _server(ctx, params.server)
        if found is None or not found[1].is_dir():
            ctx.log("info", f"server {params.server!r} is gone: nothing to remove\n")
            return result
        record, sandbox = found
        installed = {t.get("name"): t for t in record.get("taskservs") or []}
        settings = params.settings or installed.get(params.taskserv, {}).get("settings") or {}
        ts = await asyncio.to_thread(
            load_taskserv, catalog_for(ctx.settings), params.taskserv, settings
        )
        await _run_script(ts.remove_script, sandbox, script_env(ts, sandbox, record, ctx), ctx)
        await _record(ctx, params.server, _DROP_ENTRY, name=ts.name)
        return {**result, "removed": True, "was_installed": ts.name in installed}


ACTIONS = (TaskservInstall, TaskservRemove)
