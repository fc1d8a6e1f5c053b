"""Read-only state as MCP resources: each template is one read tool of the registry.

A read is a `Registry.invoke` of that tool as the caller (`calls.Caller`), so it is
identified, authorized, rate-limited and audited like a tool call, and a refusal is the
same `not_found`/`forbidden` (as a JSON-RPC error carrying `{error, trace_id}`).
`resources/list` shows the concrete resources the caller may read (its servers and
recent workflows, bounded) next to the templates.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from fastmcp import FastMCP
from fastmcp.resources import Resource, ResourceContent, ResourceResult, ResourceTemplate
from fastmcp.resources.types import TextResource
from pydantic import AnyUrl, PrivateAttr

from registry import Envelope, NotFound
from servers.mcp.calls import Caller, envelope_error
from servers.wire import json_bytes

SCHEME = "prvng"
JSON = "application/json"
LISTED_SERVERS = 50
LISTED_WORKFLOWS = 20


@dataclass(frozen=True, slots=True)
class ResourceKind:
    """One template: its URI, the tool that reads it and how its params become args."""

    uri_template: str
    name: str
    tool: str
    description: str
    args: Callable[..., dict[str, Any]]
    pick: Callable[[Any], Any] = lambda data: data


def _one_record(data: Any) -> Any:
    records = data["records"]
    if not records:
        raise LookupError
    return records[0]


KINDS = (
    ResourceKind(
        f"{SCHEME}://servers",
        "servers",
        "server.list",
        "The server inventory (first 100)",
        lambda: {"limit": 100},
    ),
    ResourceKind(
        f"{SCHEME}://taskservs",
        "taskservs",
        "taskserv.list",
        "The taskserv catalog and what is installed where",
        dict,
    ),
    ResourceKind(
        f"{SCHEME}://policies",
        "policies",
        "policy.validate",
        "The check of the configured Cedar policies against the platform's schema",
        dict,
    ),
    ResourceKind(
        f"{SCHEME}://servers/{{name}}",
        "server",
        "server.get",
        "A server of the inventory: provider, labels, status, taskservs",
        lambda name: {"name": name},
    ),
    ResourceKind(
        f"{SCHEME}://workflows/{{id}}",
        "workflow",
        "workflow.get",
        "A workflow's state and task counts (subscribe: updated as its tasks change)",
        lambda id: {"id": id},
    ),
    ResourceKind(
        f"{SCHEME}://workflows/{{id}}/tasks/{{task}}/logs",
        "task-logs",
        "task.logs",
        "What a task printed (its last 200 lines) and what the engine noted",
        lambda id, task: {"workflow_id": id, "task_id": task, "tail": 200},
    ),
    ResourceKind(
        f"{SCHEME}://ops/{{op_id}}",
        "op",
        "ops.get",
        "An op of the ops plane: its decision, approvals and the plan's changes",
        lambda op_id: {"op_id": op_id},
    ),
    ResourceKind(
        f"{SCHEME}://config/{{path*}}",
        "config",
        "config.export",
        "A workspace Nickel file, evaluated to JSON",
        lambda path: {"path": path},
        lambda data: data["value"],
    ),
    ResourceKind(
        f"{SCHEME}://audit/{{event}}",
        "audit-event",
        "audit.query",
        "One audit record, by event id",
        lambda event: {"event_id": event, "limit": 1},
        _one_record,
    ),
    ResourceKind(
        f"{SCHEME}://docs/{{tool}}",
        "tool-doc",
        "tools.describe",
        "A tool in full: description, input and output schemas, the errors it answers",
        lambda tool: {"name": tool},
    ),
)


class RegistryTemplate(ResourceTemplate):
    """A template whose read is one `Registry.invoke` of its kind's tool, as the caller."""

    _kind: ResourceKind = PrivateAttr()
    _caller: Caller = PrivateAttr()

    @classmethod
    def of(cls, kind: ResourceKind, caller: Caller) -> RegistryTemplate:
        names = re.findall(r"{(\w+)\*?}", kind.uri_template)
        template = cls(
            uri_template=kind.uri_template,
            name=kind.name,
            description=kind.description,
            mime_type=JSON,
            parameters={
                "type": "object",
                "properties": {n: {"type": "string"} for n in names},
                "required": names,
            },
            # The pipeline judges every value (a config path outside the workspace is its
            # `invalid_input`, as on every tier), not a second screen with other errors.
            security=None,
        )
        template._kind = kind
        template._caller = caller
        return template

    async def _read(self, uri: str, params: dict[str, Any]) -> ResourceResult:
        return await _read(self._kind, self._caller, uri, params)


class RegistryResource(Resource):
    """A resource without parameters, read like a template's (one `Registry.invoke`)."""

    _kind: ResourceKind = PrivateAttr()
    _caller: Caller = PrivateAttr()

    @classmethod
    def of(cls, kind: ResourceKind, caller: Caller) -> RegistryResource:
        resource = cls(
            uri=AnyUrl(kind.uri_template),
            name=kind.name,
            description=kind.description,
            mime_type=JSON,
        )
        resource._kind = kind
        resource._caller = caller
        return resource

    async def _read(self) -> ResourceResult:
        return await _read(self._kind, self._caller, str(self.uri), {})


async def _read(
    kind: ResourceKind, caller: Caller, uri: str, params: dict[str, Any]
) -> ResourceResult:
    env = await caller.invoke(kind.tool, kind.args(**params))
    if not env.ok:
        raise envelope_error(env)
    try:
        body = kind.pick(env.data)
    except LookupError:
        missing = NotFound(f"no {kind.name} at {uri}; {kind.tool} lists what there is")
        raise envelope_error(Envelope.failure(missing, env.trace_id)) from None
    return ResourceResult([ResourceContent(json_bytes(body).decode(), mime_type=JSON)])


def add_resources(server: FastMCP, caller: Caller) -> None:
    """Register every kind on `server`: a template where its URI has parameters."""
    for kind in KINDS:
        if "{" in kind.uri_template:
            server.add_template(RegistryTemplate.of(kind, caller))
        else:
            server.add_resource(RegistryResource.of(kind, caller))


async def listed_resources(caller: Caller) -> list[Resource]:
    """The concrete resources the caller may read: servers and recent workflows (each
    list a pipeline call; a refused one lists nothing)."""
    found: list[Resource] = []
    servers = await caller.data_or_none("server.list", {"limit": LISTED_SERVERS})
    for server in (servers or {}).get("servers", []):
        found.append(_listed(f"{SCHEME}://servers/{server['name']}", f"server {server['name']}"))
    workflows = await caller.data_or_none("workflow.list", {"limit": LISTED_WORKFLOWS})
    for wf in (workflows or {}).get("workflows", []):
        label = f"workflow {wf['id']} ({wf['state']})"
        found.append(_listed(f"{SCHEME}://workflows/{wf['id']}", label))
    return found


def _listed(uri: str, name: str) -> Resource:
    """A listing entry only: reading its URI goes through its template."""
    return TextResource(uri=AnyUrl(uri), name=name, text="", mime_type=JSON)
