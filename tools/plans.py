"""Plans: what a workflow-starting tool would run, and change, instead of running it.

A plan names the op (the tool), its targets, the exact workflow it would submit (params as
given: secret references stay references) and the resource changes against the current
state, plus two digests: `state_digest` of the state it was computed on (an approval can
refuse when that moved) and `digest` of the whole plan. See docs/plans.md.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from typing import Annotated, Any, Literal

from pydantic import ConfigDict, Field, RootModel, WithJsonSchema

from daemons.common.inventory import DELETED, Inventory
from daemons.common.state import StateStore
from daemons.ops.model import ControlCommand, ControlTask
from daemons.orchestrator.model import WorkflowSpec
from daemons.orchestrator.protocol import OrchestratorAPI, OrchestratorHandle
from daemons.orchestrator.views import WorkflowView
from registry import NotFound, StrictModel, ToolContext
from registry.canonical import sha256_digest
from tools.workflow.access import owned

Action = Literal["create", "update", "delete", "no-op"]
CONTROL_OPS = frozenset({"workflow.retry", "workflow.rollback"})
"""Ops on a recorded workflow: their plan is `control_plan`'s, their state the workflow's."""


class Change(StrictModel):
    action: Action
    kind: str
    name: str
    before: dict[str, Any] | None
    after: dict[str, Any] | None


class PlanTarget(StrictModel):
    kind: str
    name: str
    labels: dict[str, str]


class Plan(StrictModel):
    """The answer of a call with `plan: true`; nothing was submitted."""

    kind: Literal["plan"] = "plan"
    op: str
    targets: list[PlanTarget]
    workflow: dict[str, Any] = Field(description="Exactly what would be submitted")
    changes: list[Change]
    state_digest: str
    digest: str


_PLAN_SCHEMA = {"required": ["digest"]}
"""The plan branch as listed: only what tells it from a workflow, since seven tools'
listings carry it (the MCP listing has a token budget); the answer is still checked
against `Plan` in full, and docs/plans.md describes it."""


class WorkflowOrPlan(RootModel[WorkflowView | Annotated[Plan, WithJsonSchema(_PLAN_SCHEMA)]]):
    """A workflow-starting tool's answer: the workflow, or (with `plan`) its plan (an
    object either way, as MCP wants of an output schema's root)."""

    model_config = ConfigDict(json_schema_extra={"type": "object"})


def make_plan(
    op: str,
    targets: Iterable[PlanTarget],
    workflow: dict[str, Any],
    changes: list[Change],
    state: Any,
) -> Plan:
    """The plan with its digests (`digest` covers everything but itself)."""
    content = {
        "kind": "plan",
        "op": op,
        "targets": [t.model_dump(mode="json") for t in targets],
        "workflow": workflow,
        "changes": [c.model_dump(mode="json") for c in changes],
        "state_digest": sha256_digest(state),
    }
    return Plan.model_validate({**content, "digest": sha256_digest(content)})


def submitted(spec: WorkflowSpec, wf_id: str | None, ctx: ToolContext) -> dict[str, Any]:
    """The workflow `submit` would send for `spec`: owner label set, id as chosen."""
    spec = spec.model_copy(update={"labels": owned(spec.labels, ctx.principal.id)})
    return {"id": wf_id, **spec.model_dump(mode="json")}


_SERVER_FIELDS = ("provider", "labels", "plan", "image")
"""What a server.create task sets that an existing record can differ in."""
_TASKSERV_FIELDS = ("name", "settings", "status")


async def _record(inventory: Inventory, name: str) -> dict[str, Any] | None:
    """What a plan sees of a live server (None: never there, or deleted): what the
    workflows set, not where or when (sandbox paths, timestamps differ between homes)."""
    try:
        record = await inventory.get(name)
    except NotFound:
        return None
    if record.get("status") == DELETED:
        return None
    seen = {k: record[k] for k in ("status", *_SERVER_FIELDS) if k in record}
    seen["taskservs"] = [
        {k: t.get(k) for k in _TASKSERV_FIELDS} for t in record.get("taskservs") or []
    ]
    return seen


def _installed(record: dict[str, Any] | None, taskserv: str) -> dict[str, Any] | None:
    for entry in (record or {}).get("taskservs", []):
        if entry.get("name") == taskserv:
            return dict(entry)
    return None


def _server_change(name: str, before: dict[str, Any] | None, params: dict[str, Any]) -> Change:
    after = {k: params[k] for k in _SERVER_FIELDS if k in params}
    if before is None:
        return Change(action="create", kind="server", name=name, before=None, after=after)
    same = all(before.get(k) == v for k, v in after.items())
    action: Action = "no-op" if same else "update"
    return Change(action=action, kind="server", name=name, before=before, after=after)


def _taskserv_change(
    server: str, taskserv: str, before: dict[str, Any] | None, settings: dict[str, Any]
) -> Change:
    name = f"{server}/{taskserv}"
    after = {"settings": settings}
    if before is None:
        return Change(action="create", kind="taskserv", name=name, before=None, after=after)
    same = before.get("settings") == settings or not settings
    action: Action = "no-op" if same else "update"
    return Change(action=action, kind="taskserv", name=name, before=before, after=after)


async def provisioning_changes(
    spec: WorkflowSpec, ctx: ToolContext
) -> tuple[list[Change], dict[str, Any]]:
    """The changes the provisioning tasks of `spec` make, and the inventory state they
    were computed on (each named server's live record or None)."""
    inventory = Inventory(await ctx.resource(StateStore))
    state: dict[str, Any] = {}
    changes: list[Change] = []
    for task in spec.tasks:
        params = task.params
        server = params.get("name") if task.action.startswith("server.") else params.get("server")
        if not isinstance(server, str):
            continue
        if server not in state:
            state[server] = await _record(inventory, server)
        before = state[server]
        if task.action == "server.create":
            changes.append(_server_change(server, before, params))
        elif task.action == "server.delete":
            gone: Action = "no-op" if before is None else "delete"
            changes.append(
                Change(action=gone, kind="server", name=server, before=before, after=None)
            )
        elif task.action in ("taskserv.install", "taskserv.remove"):
            taskserv = str(params.get("taskserv") or params.get("name"))
            installed = _installed(before, taskserv)
            if task.action == "taskserv.install":
                settings = dict(params.get("settings") or {})
                changes.append(_taskserv_change(server, taskserv, installed, settings))
            else:
                action: Action = "no-op" if installed is None else "delete"
                name = f"{server}/{taskserv}"
                changes.append(
                    Change(action=action, kind="taskserv", name=name, before=installed, after=None)
                )
    return changes, state


def server_targets(
    changes: Iterable[Change], labels: dict[str, dict[str, str]]
) -> list[PlanTarget]:
    """One target per server a change touches, with its labels."""
    names = dict.fromkeys(c.name.split("/")[0] for c in changes)
    return [PlanTarget(kind="server", name=n, labels=labels.get(n, {})) for n in names]


async def plan_spec(op: str, spec: WorkflowSpec, wf_id: str | None, ctx: ToolContext) -> Plan:
    """The plan of submitting `spec`: its workflow, and its provisioning changes."""
    await (await ctx.resource(OrchestratorHandle)).api.check(spec)
    changes, state = await provisioning_changes(spec, ctx)
    labels: dict[str, dict[str, str]] = {}
    for name, record in state.items():
        labels[name] = {str(k): str(v) for k, v in ((record or {}).get("labels") or {}).items()}
    for task in spec.tasks:
        if task.action == "server.create" and isinstance(task.params.get("labels"), dict):
            labels[str(task.params["name"])] = {
                str(k): str(v) for k, v in task.params["labels"].items()
            }
    targets = server_targets(changes, labels)
    workflow = submitted(spec, wf_id, ctx)
    if not targets:
        targets = [PlanTarget(kind="workflow", name=wf_id or spec.name, labels=spec.labels)]
    return make_plan(op, targets, workflow, changes, state)


async def control_plan(op: str, api: OrchestratorAPI, wf_id: str) -> Plan:
    """The plan of a command on a recorded workflow (retry, rollback): the workflow as it
    stands, each task with its state, attempts and compensation (`ControlCommand`, what
    the controller checks before it runs the command); the state digest covers it."""
    view = await api.get(wf_id)
    tasks = [
        ControlTask(
            id=t.id,
            action=t.action,
            params=t.params,
            state=t.state.value,
            attempts=t.attempts,
            compensate=None
            if t.compensation is None
            else {"action": t.compensation.action, "params": t.compensation.params},
        )
        for t in await api.tasks(wf_id)
    ]
    command = ControlCommand(
        id=view.id,
        name=view.name,
        command="retry" if op == "workflow.retry" else "rollback",
        state=view.state.value,
        tasks=tasks,
    )
    target = PlanTarget(kind="workflow", name=view.id, labels=view.labels)
    workflow = command.model_dump(mode="json")
    return make_plan(op, [target], workflow, [], command.fingerprint())


async def state_digest_now(op: str, workflow: dict[str, Any], ctx: ToolContext) -> str:
    """The state digest a plan of op `op` (its `workflow` as planned) would carry now:
    an approval compares it with the plan's."""
    if op in CONTROL_OPS:
        api = (await ctx.resource(OrchestratorHandle)).api
        return (await control_plan(op, api, str(workflow["id"]))).state_digest
    spec = await asyncio.to_thread(WorkflowSpec.model_validate, workflow)  # may be a MiB
    _, state = await provisioning_changes(spec, ctx)
    return sha256_digest(state)
