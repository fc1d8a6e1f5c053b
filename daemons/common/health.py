"""Readiness, computed in one place: every component registers a probe on one board.

`/health`, `platform.health` and `prvng platform status` all read `HealthBoard.check`,
so they can never disagree about what is up.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class ComponentStatus:
    """One component's readiness and what to show next to it (its URL, load, or why not)."""

    ready: bool
    detail: str = ""


Probe = Callable[[], Awaitable[ComponentStatus]]


class HealthBoard:
    """Named readiness probes, asked in the order they were added."""

    def __init__(self) -> None:
        self._probes: dict[str, Probe] = {}

    def add(self, name: str, probe: Probe) -> None:
        """Add (or replace) the probe of component `name`."""
        self._probes[name] = probe

    async def check(self) -> dict[str, ComponentStatus]:
        """Every component's status; a probe that raises reports its component not ready."""
        states: dict[str, ComponentStatus] = {}
        for name, probe in self._probes.items():
            try:
                states[name] = await probe()
            except Exception as exc:  # a failing probe means "not ready", said as such
                states[name] = ComponentStatus(False, f"{type(exc).__name__}: {exc}")
        return states
