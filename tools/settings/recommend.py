"""`settings.recommend`: the rule catalog (`tools.settings.rules`) run on a workspace.

Facts come from the config cache: the workspace's value, each named taskserv's catalog
definition (the workspace's `taskservs/` first, then the bundled catalog, as installs
look), and the keeper policy the keeper would load (the workspace's, else the shipped).
"""

from __future__ import annotations

import asyncio
from typing import Any

from pydantic import Field, ValidationError

from daemons.keeper.policy import Policy
from daemons.keeper.runtime import policy_path
from daemons.orchestrator.provisioning.taskservs import catalog_dirs
from registry import ContractCase, RestAlias, Risk, StrictModel, ToolContext, ToolSpec
from registry.errors import PlatformError
from tools.settings.rules import RULES, SEVERITY_ORDER, Facts, Severity
from tools.settings.source import SourceInput, Workspace, load, workspace_of


class RecommendInput(SourceInput):
    min_severity: Severity = Field(default="info", description="Leave out findings below this")


class Finding(StrictModel):
    rule: str
    severity: Severity
    where: str
    message: str
    fix: str


class RecommendOutput(StrictModel):
    source: str
    findings: list[Finding]
    rules_checked: list[str]


def _definition(ws: Workspace, name: str) -> dict[str, Any] | None:
    for root in catalog_dirs(ws.config_dir):
        ncl = root / name / "taskserv.ncl"
        if name.replace("-", "").isalnum() and ncl.is_file():
            try:
                value = ws.cache.read(root.parent.resolve(), ncl.resolve())
            except PlatformError:
                return None
            return value if isinstance(value, dict) else None
    return None


def _policy(ws: Workspace) -> Policy | None:
    """The policy the keeper loads for this workspace (`policy_path`), read through the cache."""
    path = policy_path(ws.settings).resolve()
    try:
        return Policy.model_validate(ws.cache.read(path.parent, path))
    except (PlatformError, ValidationError):
        return None


def facts(ws: Workspace, value: Any) -> Facts:
    """What the rules read, from the cache (blocking: run it off the loop)."""
    workspace = value if isinstance(value, dict) else {}
    found = Facts(workspace, {}, _policy(ws))
    names = {str(entry.get("name")) for _where, _server, entry in found.taskservs()}
    found.catalog.update({name: _definition(ws, name) for name in sorted(names)})
    return found


async def recommend(args: RecommendInput, ctx: ToolContext) -> RecommendOutput:
    ws = await workspace_of(ctx)
    value = await load(ws, args)
    known = await asyncio.to_thread(facts, ws, value)
    floor = SEVERITY_ORDER[args.min_severity]
    findings = [
        Finding(rule=rule.id, severity=rule.severity, where=where, message=message, fix=rule.fix)
        for rule in RULES
        if SEVERITY_ORDER[rule.severity] >= floor
        for where, message in rule.check(known)
    ]
    findings.sort(key=lambda f: -SEVERITY_ORDER[f.severity])
    return RecommendOutput(
        source=args.label, findings=findings, rules_checked=[r.id for r in RULES]
    )


TOOLS = [
    ToolSpec(
        name="settings.recommend",
        summary="Check a workspace against best-practice rules (ids, severities, fixes)",
        input_model=RecommendInput,
        output_model=RecommendOutput,
        handler=recommend,
        permission="config:read",
        risk=Risk.READ,
        idempotent=True,
        rest=RestAlias("POST", "/v1/settings/recommend"),
        tags=("settings", "config"),
        cases=(
            ContractCase("example workspace", {"path": "workspace.ncl"}),
            ContractCase(
                "plaintext secret",
                {"text": '{ name = "x", servers = [{ name = "a", labels = { token = "abc" } }] }'},
            ),
            ContractCase(
                "broken config", {"path": "examples/invalid-port.ncl"}, expect="invalid_input"
            ),
        ),
    ),
]
