"""Prompts an assistant can offer its user, each filled with the platform's real state.

Every piece of context is read through the pipeline as the requester (`calls.Caller`)
and embedded as the resource it is (`prvng://…`, the same JSON a resource read gives),
so a prompt shows only what its user may read, and a refused read fails the prompt
with the pipeline's error. The text around it says what to do with it, and which
tools to call next; nothing in a prompt is invented.
"""

from __future__ import annotations

from typing import Any

from fastmcp import FastMCP
from fastmcp.prompts import Message, Prompt, PromptResult
from mcp_types import EmbeddedResource, TextResourceContents
from pydantic import Field

from registry import Envelope, NotFound
from registry.trace import new_trace_id
from servers.mcp.calls import Caller, envelope_error
from servers.mcp.completions import KEEPER_POLICY
from servers.mcp.resources import JSON, SCHEME
from servers.wire import json_bytes

LOG_TAIL = 200


def embedded(uri: str, data: Any) -> Message:
    """`data` as the resource `uri` (JSON), in a user message."""
    text = json_bytes(data).decode()
    contents = TextResourceContents(uri=uri, mime_type=JSON, text=text)
    return Message(EmbeddedResource(type="resource", resource=contents))


async def plan_deployment(
    caller: Caller, description: str, server: str | None, taskserv: str | None
) -> PromptResult:
    servers = await caller.read("server.list", {"limit": 100})
    taskservs = await caller.read("taskserv.list", {})
    workspace = await caller.read("config.export", {"path": "workspace.ncl"})
    focus = [
        *([f"Deploy onto the server {server}."] if server else []),
        *([f"Install the taskserv {taskserv}."] if taskserv else []),
    ]
    ask = (
        f"Plan this deployment on the provisioning platform: {description}\n"
        f"{' '.join(focus)}\n"
        "Below are the servers it has, the taskserv catalog and the workspace config. "
        "Propose the steps as tool calls (server.create, taskserv.create) and run each "
        "with `plan: true` first: the plan says what would be created, changed or "
        "destroyed, and whether the keeper lets it run or needs an approval. Reuse "
        "servers that exist; say which settings you change from a taskserv's defaults."
    )
    return PromptResult(
        [
            Message(ask),
            embedded(f"{SCHEME}://servers", servers),
            embedded(f"{SCHEME}://taskservs", taskservs),
            embedded(f"{SCHEME}://config/workspace.ncl", workspace["value"]),
        ],
        description=f"Plan: {description[:80]}",
    )


async def review_plan(caller: Caller, op_id: str) -> PromptResult:
    op = await caller.read("ops.get", {"op_id": op_id})
    ask = (
        f"Review operation {op_id} before it is approved. It is a {op['op_type']} on "
        f"{op['target'].get('name')} requested by {op['requester']}, decided by the "
        f"keeper's rule {op['rule']!r} (status {op['status']}, "
        f"{op.get('approvals_needed', 0)} approval(s) needed by "
        f"{', '.join(op.get('approver_roles') or []) or 'nobody'}). Check the target, its "
        "labels and the risk against what the requester meant to do; say what could go "
        "wrong, then recommend `ops.approve` or `ops.reject` (with a reason). The "
        "requester cannot approve their own op."
    )
    return PromptResult(
        [Message(ask), embedded(f"{SCHEME}://ops/{op_id}", op)],
        description=f"Review {op['op_type']} {op_id}",
    )


async def diagnose_workflow(caller: Caller, workflow_id: str) -> PromptResult:
    workflow = await caller.read("workflow.get", {"id": workflow_id})
    failed = await caller.read("task.list", {"workflow_id": workflow_id, "state": "failed"})
    messages = [embedded(f"{SCHEME}://workflows/{workflow_id}", workflow)]
    tasks = failed["tasks"]
    for task in tasks:
        logs = await caller.read(
            "task.logs", {"workflow_id": workflow_id, "task_id": task["id"], "tail": LOG_TAIL}
        )
        uri = f"{SCHEME}://workflows/{workflow_id}/tasks/{task['id']}"
        messages.append(embedded(uri, task))
        messages.append(embedded(f"{uri}/logs", logs))
    if tasks:
        errors = "; ".join(f"{t['id']} ({t['action']}): {t['error']}" for t in tasks)
        ask = (
            f"Workflow {workflow_id} is {workflow['state']}. Failed: {errors}. Below are the "
            "workflow, each failed task and its last log lines. Find the cause (port in "
            "use, missing dependency, permission, timeout, failing health check, bad "
            "params…), then say what to fix and the next command to run (`workflow.retry` "
            "once it is fixed, or `workflow.rollback`)."
        )
    else:
        ask = (
            f"Workflow {workflow_id} is {workflow['state']} and none of its tasks failed"
            f"{': ' + workflow['reason'] if workflow.get('reason') else ''}. Below is the "
            "workflow; say whether anything needs doing."
        )
    return PromptResult([Message(ask), *messages], description=f"Diagnose {workflow_id}")


async def harden_workspace(caller: Caller, path: str, policy_rule: str | None) -> PromptResult:
    config = await caller.read("config.export", {"path": path})
    policy = await caller.read("config.export", {"path": KEEPER_POLICY})
    rules = policy["value"].get("rules", [])
    if policy_rule is not None and policy_rule not in [r.get("name") for r in rules]:
        missing = NotFound(
            f"the keeper policy has no rule {policy_rule!r}; complete `policy` for its names",
            details={"policy": policy_rule, "file": KEEPER_POLICY},
        )
        raise envelope_error(Envelope.failure(missing, new_trace_id()))
    focus = f" Start with the keeper rule {policy_rule!r}." if policy_rule else ""
    cedar = await caller.read("policy.validate", {})
    servers = await caller.read("server.list", {"limit": 100})
    ask = (
        f"Harden the workspace config {path}. Below are its evaluated value, the keeper's "
        "approval policy, the Cedar policies' check and the servers. Look for exposed "
        "ports and addresses, taskservs without health checks or pinned versions, "
        "prod servers that the keeper's rules let through without an approval, and roles "
        "broader than needed. For each finding give the file, the change, and why; check "
        f"each change with `config.validate` and `policy.validate` before proposing it.{focus}"
    )
    return PromptResult(
        [
            Message(ask),
            embedded(f"{SCHEME}://config/{path}", config["value"]),
            embedded(f"{SCHEME}://config/{KEEPER_POLICY}", policy["value"]),
            embedded(f"{SCHEME}://policies", cedar),
            embedded(f"{SCHEME}://servers", servers),
        ],
        description=f"Harden {path}",
    )


def add_prompts(server: FastMCP, caller: Caller) -> None:
    """Register the prompts; their arguments complete through `completions.SOURCES`."""

    async def plan(
        description: str = Field(description="What to deploy, in the user's words"),
        server: str | None = Field(default=None, description="A server to deploy onto"),
        taskserv: str | None = Field(default=None, description="A taskserv to install"),
    ) -> PromptResult:
        return await plan_deployment(caller, description, server, taskserv)

    async def review(
        op_id: str = Field(description="The pending op (`ops.list` shows them)"),
    ) -> PromptResult:
        return await review_plan(caller, op_id)

    async def diagnose(
        workflow_id: str = Field(description="The workflow that failed"),
    ) -> PromptResult:
        return await diagnose_workflow(caller, workflow_id)

    async def harden(
        path: str = Field(default="workspace.ncl", description="The workspace file"),
        policy: str | None = Field(default=None, description="A keeper rule to start with"),
    ) -> PromptResult:
        return await harden_workspace(caller, path, policy)

    for name, fn, about in (
        ("plan-deployment", plan, "Plan a deployment from a description, with plans first"),
        ("review-plan", review, "Review a pending op before approving or rejecting it"),
        ("diagnose-workflow", diagnose, "Find why a workflow failed, from its tasks and logs"),
        ("harden-workspace", harden, "Review a workspace's config and policies for risks"),
    ):
        server.add_prompt(Prompt.from_function(fn, name=name, description=about))
