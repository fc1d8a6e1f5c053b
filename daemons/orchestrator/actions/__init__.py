"""The actions a task can run, one module each, looked up by name.

Each module defines one or more classes implementing `Action` and lists them in
`ACTIONS`. `load_actions()` imports the modules named in `DEFAULT_MODULES`.
"""

from __future__ import annotations

from collections.abc import Iterable
from importlib import import_module

from daemons.orchestrator.actions.base import Action, ActionContext, ActionError

DEFAULT_MODULES: tuple[str, ...] = (
    "noop",
    "sleep",
    "shell",
    "http_request",
    "server",
    "taskserv",
)


def load_actions(modules: Iterable[str] = DEFAULT_MODULES) -> dict[str, Action]:
    """Every action of the named modules, by action name."""
    actions: dict[str, Action] = {}
    for module in modules:
        for action_cls in import_module(f"{__name__}.{module}").ACTIONS:
            if action_cls.name in actions:
                raise ValueError(f"action {action_cls.name!r} is defined twice")
            actions[action_cls.name] = action_cls()
    return actions


__all__ = ["DEFAULT_MODULES", "Action", "ActionContext", "ActionError", "load_actions"]
