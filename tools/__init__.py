"""The operations, grouped by domain: each module lists its `ToolSpec`s in `TOOLS`.

Adding an operation: write its models and handler in a module here, list its `ToolSpec`
in that module's `TOOLS` (with contract cases), and name the module in `TOOL_MODULES`.
Every tier, OpenAPI and the contract suite pick it up from there. The running system
(registry, resources, daemons) is assembled in `servers.assembly`, not here.
"""

from __future__ import annotations

from importlib import import_module

from registry import ToolSpec

TOOL_MODULES = (
    "tools.meta",
    "tools.platform",
    "tools.config.workspace",
    "tools.server.registration",
    "tools.server.lifecycle",
    "tools.server.health",
    "tools.taskserv.installs",
    "tools.workflow.workflows",
    "tools.workflow.events",
    "tools.workflow.tasks",
    "tools.workflow.diagnose",
    "tools.access.accounts",
    "tools.access.keys",
    "tools.access.logins",
    "tools.access.policies",
    "tools.secret.vault",
    "tools.audit.records",
    "tools.audit.trail",
    "tools.ops.operations",
    "tools.settings.generate",
    "tools.settings.validate",
    "tools.settings.recommend",
    "tools.settings.plan",
    "tools.settings.complete",
    "tools.settings.help",
)


def all_specs() -> list[ToolSpec]:
    """Every operation's spec, in module order."""
    specs: list[ToolSpec] = []
    for module in TOOL_MODULES:
        specs.extend(import_module(module).TOOLS)
    return specs


__all__ = ["TOOL_MODULES", "all_specs"]
