"""The provider seam: who makes a "server" exist, and how providers are found by name.

A provider turns `server.create` / `server.delete` into real machines (or, for `local`,
sandbox directories). Both calls must be idempotent: the engine runs a task again after a
crash (at-least-once), so a re-run with the same name converges on the same server, and
deleting a server that is already gone succeeds. See docs/providers.md.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from importlib import import_module
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any, Protocol

from daemons.common.settings import Settings
from daemons.common.state import StateStore
from daemons.orchestrator.actions.base import ActionContext
from daemons.orchestrator.model import SERVER_NAME_PATTERN
from registry.errors import InvalidInput

ENTRY_POINT_GROUP = "prvng.providers"
"""Python entry points in this group add providers: `name = "pkg.module:Factory"`."""

BUILTIN: dict[str, str] = {
    "local": "daemons.orchestrator.provisioning.providers.local:LocalProvider"
}


class Provider(Protocol):
    """Creates, deletes and reports servers of one kind."""

    name: str

    async def create_server(
        self, name: str, options: dict[str, Any], ctx: ActionContext
    ) -> dict[str, Any]:
        """Make server `name` exist and be recorded in the inventory; converge on re-runs."""
        ...

    async def delete_server(self, name: str, ctx: ActionContext) -> dict[str, Any]:
        """Stop everything on server `name` and remove it; a missing server is not an error."""
        ...

    async def server_status(self, name: str) -> dict[str, Any]:
        """What the provider sees of server `name` now (`status` is "missing" when none)."""
        ...

    def sandbox(self, name: str) -> Path:
        """The local directory where taskserv scripts for server `name` run."""
        ...


ProviderFactory = Callable[[Settings, StateStore | None], Provider]
"""`(settings, state store or None) -> Provider`: what `BUILTIN` and entry points name."""


def check_server_name(name: str) -> str:
    """`name` when it is a DNS label; it becomes a path and a host name, so nothing else."""
    if not re.fullmatch(SERVER_NAME_PATTERN, name):
        raise InvalidInput(
            f"{name!r} is not a valid server name: use lowercase letters, digits and '-' "
            "(a DNS label, at most 63 characters)",
            details={"server": name},
        )
    return name


def _load(target: str) -> ProviderFactory:
    module, _, attr = target.partition(":")
    factory: ProviderFactory = getattr(import_module(module), attr)
    return factory


def _installed() -> dict[str, str]:
    found = {ep.name: ep.value for ep in entry_points(group=ENTRY_POINT_GROUP)}
    return {**found, **BUILTIN}


def provider_names() -> list[str]:
    """Every provider this installation can use."""
    return sorted(_installed())


def get_provider(name: str, settings: Settings, state: StateStore | None) -> Provider:
    """The provider called `name`, bound to the platform's settings and state store."""
    target = _installed().get(name)
    if target is None:
        raise InvalidInput(
            f"unknown provider {name!r}; installed providers: {', '.join(provider_names())} "
            f"(add one with a {ENTRY_POINT_GROUP!r} entry point, see docs/providers.md)",
            details={"provider": name, "available": provider_names()},
        )
    return _load(target)(settings, state)
