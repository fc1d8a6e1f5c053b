"""Workflow templates: the specs behind `server.create`, `taskserv.create`, their deletes,
and `server.refresh` (one `server.probe` task per server).

*servers create* turns the workspace config (`config/workspace.ncl`, evaluated) into one
`server.create` task per server and a `taskserv.install` task per taskserv that depends on
its server; every task carries the compensation that undoes it, so a failed run rolls back
to nothing. Task ids are `create.<server>`, `install.<server>.<taskserv>`, and so on.
"""

from __future__ import annotations

import json
import re
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from daemons.orchestrator.model import (
    SERVER_NAME_PATTERN,
    Compensation,
    RetryPolicy,
    TaskSpec,
    WorkflowSpec,
)
from daemons.orchestrator.provisioning.taskservs import TASKSERV_NAME, Catalog, load_taskserv
from registry.errors import InvalidInput

SERVER_RETRY = RetryPolicy(max_attempts=3, backoff_s=1, max_backoff_s=10)
TASKSERV_RETRY = RetryPolicy(max_attempts=3, backoff_s=1, max_backoff_s=10)
SERVER_TIMEOUT_S = 600.0
TASKSERV_TIMEOUT_S = 900.0


class _TaskservConfig(BaseModel):
    """`{name, <setting>...}`: every field but `name` is a setting."""

    model_config = ConfigDict(extra="allow")

    name: str = Field(pattern=TASKSERV_NAME.pattern)

    def settings(self) -> dict[str, Any]:
        return dict(self.model_extra or {})


class _ServerConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(pattern=SERVER_NAME_PATTERN)
    provider: str = "local"
    labels: dict[str, str] = Field(default_factory=dict)
    plan: str | None = None
    taskservs: list[_TaskservConfig] = Field(default_factory=list)


class _Workspace(BaseModel):
    model_config = ConfigDict(extra="ignore")  # other sections are not ours

    name: str = Field(min_length=1, max_length=100)
    servers: list[_ServerConfig] = Field(default_factory=list)


def _workspace(value: dict[str, Any]) -> _Workspace:
    try:
        ws = _Workspace.model_validate(value)
    except ValidationError as exc:
        first = exc.errors()[0]
        raise InvalidInput(
            f"the workspace config is not usable: {first['msg']} at "
            f"{'.'.join(map(str, first['loc']))}; check it with `prvng config validate`",
            details={"errors": json.loads(exc.json())},
        ) from None
    names = [s.name for s in ws.servers]
    if dupes := sorted({n for n in names if names.count(n) > 1}):
        raise InvalidInput(f"the workspace lists server(s) {dupes} more than once")
    return ws


def _check(kind: str, value: str, pattern: str) -> str:
    if not re.fullmatch(pattern, value):
        raise InvalidInput(
            f"{value!r} is not a valid {kind} name: lowercase letters, digits and '-'",
            details={kind: value},
        )
    return value


def _install_task(
    server: str, taskserv: str, settings: dict[str, Any], depends_on: list[str]
) -> TaskSpec:
    params = {"server": server, "taskserv": taskserv, "settings": settings}
    return TaskSpec(
        id=f"install.{server}.{taskserv}",
        action="taskserv.install",
        params=params,
        depends_on=depends_on,
        retry=TASKSERV_RETRY,
        timeout_s=TASKSERV_TIMEOUT_S,
        compensate=Compensation(action="taskserv.remove", params=params),
    )


def servers_create_workflow(
    workspace: dict[str, Any],
    names: list[str] | None = None,
    *,
    catalog: Catalog | None = None,
    priority: int = 0,
) -> WorkflowSpec:
    """Create the named servers of `workspace` (all when `names` is None), then their taskservs.

    With `catalog` (the config dir holding `taskservs/`, read through the cache), every
    taskserv and its settings are checked now, so a typo fails the submit instead of a task
    in the middle of a run; that evaluates Nickel (blocking), so call it through
    `asyncio.to_thread` from a loop.
    """
    ws = _workspace(workspace)
    by_name = {s.name: s for s in ws.servers}
    wanted = list(dict.fromkeys(names)) if names is not None else list(by_name)
    if unknown := [n for n in wanted if n not in by_name]:
        raise InvalidInput(
            f"server(s) {unknown} are not in workspace {ws.name!r}; it has: "
            f"{', '.join(by_name) or 'no servers'}",
            details={"unknown": unknown, "available": list(by_name)},
        )
    if not wanted:
        raise InvalidInput(f"workspace {ws.name!r} has no servers to create")
    tasks: list[TaskSpec] = []
    for server in (by_name[n] for n in wanted):
        create_params: dict[str, Any] = {
            "name": server.name,
            "provider": server.provider,
            "labels": server.labels,
        }
        if server.plan is not None:
            create_params["plan"] = server.plan
        create = TaskSpec(
            id=f"create.{server.name}",
            action="server.create",
            params=create_params,
            retry=SERVER_RETRY,
            timeout_s=SERVER_TIMEOUT_S,
            compensate=Compensation(
                action="server.delete", params={"name": server.name, "provider": server.provider}
            ),
        )
        tasks.append(create)
        seen: set[str] = set()
        for ts in server.taskservs:
            if ts.name in seen:
                raise InvalidInput(f"server {server.name!r} lists taskserv {ts.name!r} twice")
            seen.add(ts.name)
            if catalog is not None:
                load_taskserv(catalog, ts.name, ts.settings())
            tasks.append(_install_task(server.name, ts.name, ts.settings(), [create.id]))
    return WorkflowSpec(
        name=f"servers-create-{ws.name}",
        priority=priority,
        labels={"template": "servers-create", "workspace": ws.name},
        tasks=tasks,
    )


def taskserv_create_workflow(
    server: str,
    taskserv: str,
    settings: dict[str, Any] | None = None,
    *,
    catalog: Catalog | None = None,
    priority: int = 0,
) -> WorkflowSpec:
    """Install one taskserv on an existing server (rolled back by removing it)."""
    _check("server", server, SERVER_NAME_PATTERN)
    _check("taskserv", taskserv, TASKSERV_NAME.pattern)
    if catalog is not None:
        load_taskserv(catalog, taskserv, settings)
    return WorkflowSpec(
        name=f"taskserv-create-{taskserv}-{server}"[:128],
        priority=priority,
        labels={"template": "taskserv-create", "server": server, "taskserv": taskserv},
        tasks=[_install_task(server, taskserv, dict(settings or {}), [])],
    )


def taskserv_delete_workflow(server: str, taskserv: str, *, priority: int = 0) -> WorkflowSpec:
    """Remove one taskserv from a server (idempotent; nothing to undo)."""
    _check("server", server, SERVER_NAME_PATTERN)
    _check("taskserv", taskserv, TASKSERV_NAME.pattern)
    task = TaskSpec(
        id=f"remove.{server}.{taskserv}",
        action="taskserv.remove",
        params={"server": server, "taskserv": taskserv},
        retry=TASKSERV_RETRY,
        timeout_s=TASKSERV_TIMEOUT_S,
    )
    return WorkflowSpec(
        name=f"taskserv-delete-{taskserv}-{server}"[:128],
        priority=priority,
        labels={"template": "taskserv-delete", "server": server, "taskserv": taskserv},
        tasks=[task],
    )


def server_delete_workflow(
    names: list[str], *, provider: str | None = None, priority: int = 0
) -> WorkflowSpec:
    """Delete servers in parallel, each stopping its taskservs first (the provider does)."""
    unique = list(dict.fromkeys(names))
    if not unique:
        raise InvalidInput("name at least one server to delete")
    tasks = []
    for name in unique:
        params: dict[str, Any] = {"name": _check("server", name, SERVER_NAME_PATTERN)}
        if provider is not None:
            params["provider"] = provider
        tasks.append(
            TaskSpec(
                id=f"delete.{name}",
                action="server.delete",
                params=params,
                retry=SERVER_RETRY,
                timeout_s=SERVER_TIMEOUT_S,
            )
        )
    return WorkflowSpec(
        name=f"server-delete-{unique[0]}" + (f"-and-{len(unique) - 1}-more" if unique[1:] else ""),
        priority=priority,
        labels={"template": "server-delete"},
        tasks=tasks,
    )


PROBE_TIMEOUT_S = 120.0


def server_refresh_workflow(names: list[str]) -> WorkflowSpec:
    """Probe servers in parallel: what runs there, against what the inventory says."""
    unique = list(dict.fromkeys(names))
    if not unique:
        raise InvalidInput("name at least one server to refresh")
    tasks = [
        TaskSpec(
            id=f"probe.{name}",
            action="server.probe",
            params={"name": _check("server", name, SERVER_NAME_PATTERN)},
            timeout_s=PROBE_TIMEOUT_S,
        )
        for name in unique
    ]
    return WorkflowSpec(
        name=f"server-refresh-{unique[0]}" + (f"-and-{len(unique) - 1}-more" if unique[1:] else ""),
        labels={"template": "server-refresh"},
        tasks=tasks,
    )
