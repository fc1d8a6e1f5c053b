"""The actions a task can run, one module each, looked up by name.

Each module defines one or more classes implementing `Action` and lists them in
`ACTIONS`. `load_actions()` imports the modules named in `DEFAULT_MODULES`, by their short
names in `MODULES`: the generic actions live here, the provisioning ones (`server`,
`taskserv`) in `daemons.orchestrator.provisioning`.
"""

from __future__ import annotations

from collections.abc import Iterable
from importlib import import_module

from daemons.orchestrator.actions.base import (
    Action,
    ActionContext,
    ActionError,
    action_error,
    is_retryable,
)

MODULES: dict[str, str] = {
    "noop": "daemons.orchestrator.actions.noop",
    "sleep": "daemons.orchestrator.actions.sleep",
    "shell": "daemons.orchestrator.actions.shell",
    "http_request": "daemons.orchestrator.actions.http_request",
    "server": "daemons.orchestrator.provisioning.server_actions",
    "taskserv": "daemons.orchestrator.provisioning.taskserv_actions",
}
"""Short name (what `--actions` takes) → the module defining those actions."""
DEFAULT_MODULES: tuple[str, ...] = tuple(MODULES)


def load_actions(modules: Iterable[str] = DEFAULT_MODULES) -> dict[str, Action]:
    """Every action of the named modules, by action name."""
    actions: dict[str, Action] = {}
    for module in modules:
        path = MODULES.get(module)
        if path is None:
            raise ImportError(
                f"no action module {module!r}; known modules: {', '.join(MODULES)}",
                name=module,
            )
        for action_cls in import_module(path).ACTIONS:
            if action_cls.name in actions:
                raise ValueError(f"action {action_cls.name!r} is defined twice")
            actions[action_cls.name] = action_cls()
    return actions


__all__ = [
    "DEFAULT_MODULES",
    "MODULES",
    "Action",
    "ActionContext",
    "ActionError",
    "action_error",
    "is_retryable",
    "load_actions",
]
