"""Who may see or control a workflow: its policy targets, built in one place.

A workflow is a `Workflow` resource with its labels, its owner (who submitted it, kept
in the `prvng.owner` label, set by the platform) and every action kind it runs
(compensations included), so the policies' rules on raw execution (`shell`, `http`)
apply to submitting it, to controlling it later (retry, rollback, cancel) and to
reading what it printed. Each task of a provisioning kind also names the server it acts
on (`Server`, with its labels), so a raw submission of a `server.create` task is decided
by the same server rule as `server.create` itself.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from daemons.common.authorization import CedarAuthorizer
from daemons.common.inventory import Inventory
from daemons.common.state import StateStore
from daemons.orchestrator.protocol import OrchestratorHandle
from daemons.orchestrator.views import WorkflowView
from registry import InvalidInput, NotFound, Target, ToolContext, ToolSpec
from registry.errors import PlatformError
from registry.resources import Resources

OWNER_LABEL = "prvng.owner"
"""The label holding the id of the principal that submitted the workflow."""
SERVER_KINDS = frozenset({"server.create", "server.delete", "server.probe"})
"""Task kinds acting on one server named by `params.name`."""

Task = tuple[str, Mapping[str, Any]]
"""A task (or compensation) as a policy sees it: its action kind and params."""


def owned(labels: Mapping[str, str], principal_id: str) -> dict[str, str]:
    """`labels` with the owner label set to `principal_id` (a caller may not forge it)."""
    claimed = labels.get(OWNER_LABEL)
    if claimed is not None and claimed != principal_id:
        raise InvalidInput(
            f"the label {OWNER_LABEL!r} is set by the platform to the submitter; remove it",
            details={"label": OWNER_LABEL, "value": claimed},
        )
    return {**labels, OWNER_LABEL: principal_id}


def workflow_target(wf_id: str, labels: Mapping[str, str], kinds: Iterable[str]) -> Target:
    return Target(
        "workflow",
        wf_id,
        tuple(sorted(labels.items())),
        owner=labels.get(OWNER_LABEL),
        environment=labels.get("env"),
        attrs=(("actions", tuple(sorted(set(kinds)))),),
    )


def _server(name: str, labels: Mapping[str, Any]) -> Target:
    pairs = tuple(sorted((str(k), str(v)) for k, v in labels.items()))
    return Target("server", name, pairs, environment=str(labels.get("env", "")) or None)


async def server_targets(tasks: Iterable[Task], resources: Resources) -> list[Target]:
    """The servers the provisioning tasks act on: a created one with the labels its task
    gives it, any other with its labels in the inventory (none when unknown)."""
    targets: list[Target] = []
    for kind, params in tasks:
        name = params.get("name")
        if kind not in SERVER_KINDS or not isinstance(name, str):
            continue
        labels = params.get("labels")
        if kind == "server.create":
            labels = labels if isinstance(labels, dict) else {}
        else:
            try:
                inventory = Inventory(await resources.get(StateStore))
                labels = (await inventory.get(name)).get("labels") or {}
            except PlatformError:
                labels = {}
        targets.append(_server(name, labels))
    return targets


async def stored_target(resources: Resources, wf_id: str) -> tuple[Target, list[Task]]:
    """A recorded workflow's target and tasks (`NotFound` when there is none)."""
    api = (await resources.get(OrchestratorHandle)).api
    view = await api.get(wf_id)
    tasks: list[Task] = []
    for task in await api.tasks(wf_id):
        tasks.append((task.action, task.params))
        if task.compensation is not None:
            tasks.append((task.compensation.action, task.compensation.params))
    return workflow_target(view.id, view.labels, (kind for kind, _ in tasks)), tasks


async def read_targets(args: Any, resources: Resources) -> list[Target]:
    """Target finder of a read of one workflow (`id` or `workflow_id`)."""
    wf_id = getattr(args, "workflow_id", None) or getattr(args, "id", None)
    if wf_id is None:
        return []
    target, _ = await stored_target(resources, wf_id)
    return [target]


async def subscribe_targets(args: Any, resources: Resources) -> list[Target]:
    """Like `read_targets`, but a workflow not yet submitted may be subscribed to (its
    events are then filtered one by one as they come)."""
    try:
        return await read_targets(args, resources)
    except NotFound:
        return []


async def control_targets(args: Any, resources: Resources) -> list[Target]:
    """Target finder of retry, rollback, cancel: they run the workflow's tasks again, so
    they are decided like submitting it."""
    target, tasks = await stored_target(resources, args.id)
    return [target, *await server_targets(tasks, resources)]


class Visibility:
    """Which workflows a caller may read, as the policies decide for `spec` (a list or
    a stream shows only those). Decisions are kept per workflow for one call."""

    def __init__(self, ctx: ToolContext, spec: ToolSpec) -> None:
        self._ctx = ctx
        self._spec = spec
        self._seen: dict[str, bool] = {}

    async def may_read(self, wf_id: str) -> bool:
        seen = self._seen.get(wf_id)
        if seen is not None:
            return seen
        resources = self._ctx.resources
        if not resources.is_open(CedarAuthorizer):
            return True  # a bare registry decides by tool permission only
        authorizer = resources.peek(CedarAuthorizer)
        try:
            target, _ = await stored_target(resources, wf_id)
        except NotFound:
            return False  # gone (or not yet there): nothing to show
        allowed = authorizer.allows(self._ctx.principal, self._spec, target)
        self._seen[wf_id] = allowed
        return allowed

    async def views(self, views: Iterable[WorkflowView]) -> list[WorkflowView]:
        return [view for view in views if await self.may_read(view.id)]
