"""The platform supervisor: every component in one process, started in order.

A `Component` starts and stops. `Platform` starts components in the order they were added
and stops them in reverse; readiness is the registry's `HealthBoard`, which the HTTP
component joins. `serve` runs only the HTTP tier in the caller's event loop (tests, the
contract harness, benchmarks). The process around it is `servers.cli.processes`.
"""

from __future__ import annotations

import logging
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Protocol

from starlette.applications import Starlette

from daemons.common.asgi import AsgiServer
from daemons.common.health import ComponentStatus, HealthBoard
from daemons.common.heap import freeze_startup_heap
from daemons.common.settings import HttpLimits, Settings
from daemons.common.state import StateStore
from daemons.controller import Controller
from daemons.keeper import Keeper
from daemons.orchestrator.protocol import OrchestratorHandle
from registry import Registry
from registry.timestamps import utc_now_iso
from servers import runfile
from servers.assembly import Bus, provide_ops
from servers.daemon_components import daemon_components
from servers.http import begin_shutdown, create_app

log = logging.getLogger("prvng.platform")


class Component(Protocol):
    """One part of the running platform (state store, orchestrator, HTTP, NATS, ...).

    Components start and stop; what they report goes on the registry's `HealthBoard`."""

    name: str

    async def start(self) -> None:
        """Return once the component is ready; raise a `PlatformError` if it cannot be."""

    async def stop(self) -> None:
        """Release everything `start` took; must not raise."""


class StateComponent:
    """Opens the state store eagerly, so a locked embedded store fails the start."""

    name = "state"

    def __init__(self, registry: Registry) -> None:
        self.registry = registry

    async def start(self) -> None:
        store = await self.registry.resources.get(StateStore)
        await store.query("RETURN 1")

    async def stop(self) -> None:
        """The registry closes the store with its other resources."""


class OrchestratorComponent:
    """The workflow engine, started with the platform so recovery resumes work at once."""

    name = "orchestrator"

    def __init__(self, registry: Registry) -> None:
        self.registry = registry

    async def start(self) -> None:
        handle = await self.registry.resources.get(OrchestratorHandle)
        if handle.health is None:
            await handle.api.list(limit=1)  # the daemon answers and accepts our token

    async def stop(self) -> None:
        """The registry stops the engine with its other resources."""


class ResourceComponent:
    """A resource of the registry opened with the platform (nats, keeper, controller), so a
    failure fails the start and `/health` reports it from the first request on."""

    def __init__(self, name: str, registry: Registry, key: type) -> None:
        self.name = name
        self.registry = registry
        self.key = key

    async def start(self) -> None:
        await self.registry.resources.get(self.key)

    async def stop(self) -> None:
        """The registry closes it with its other resources, in reverse order of opening."""


class HttpComponent:
    """The HTTP daemon (REST, OpenAPI, `/mcp`) on uvicorn."""

    name = "http"

    def __init__(
        self,
        app: Starlette,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        limits: HttpLimits | None = None,
    ) -> None:
        self.app = app
        self.server = AsgiServer(app, host, port, limits=limits)
        self.running = False

    @property
    def url(self) -> str:
        return self.server.url

    async def status(self) -> ComponentStatus:
        return ComponentStatus(self.running, self.server.url if self.running else "stopped")

    async def start(self) -> None:
        await self.server.start()
        self.running = True

    async def stop(self) -> None:
        self.running = False
        begin_shutdown(self.app)
        await self.server.stop()


class Platform:
    """Owns the settings, the registry and the components."""

    def __init__(self, settings: Settings, registry: Registry) -> None:
        self.settings = settings
        self.registry = registry
        self.health: HealthBoard = registry.resources.peek(HealthBoard)
        self.run_secret = runfile.new_secret()
        """Goes in the run file; the HTTP tier proves with it that it is this platform."""
        self.components: list[Component] = []
        self._started: list[Component] = []

    def add_component(self, component: Component, *, before: str | None = None) -> None:
        """Add a component, last or just before the one named `before`."""
        if any(c.name == component.name for c in self.components):
            raise ValueError(f"a component named {component.name!r} is already added")
        names = [c.name for c in self.components]
        if before is not None and before not in names:
            raise ValueError(f"no component named {before!r} to add {component.name!r} before")
        index = len(names) if before is None else names.index(before)
        self.components.insert(index, component)

    async def start(self) -> None:
        """Start every component in order; on failure stop those started and re-raise."""
        for component in self.components:
            try:
                await component.start()
            except BaseException:
                await self.stop()
                raise
            self._started.append(component)
            log.info("component %s started", component.name)
        freeze_startup_heap()  # what start-up built lives as long as the process

    async def stop(self) -> None:
        while self._started:
            component = self._started.pop()
            try:
                await component.stop()
            except Exception:
                log.exception("component %s failed to stop", component.name)

    @property
    def running(self) -> bool:
        """Every component has started and none has stopped."""
        return len(self._started) == len(self.components)


@asynccontextmanager
async def serve(
    registry: Registry,
    settings: Settings,
    host: str = "127.0.0.1",
    port: int = 0,
    *,
    write_run_file: bool = False,
    health: HealthBoard | None = None,
) -> AsyncIterator[str]:
    """Serve the HTTP tier in this event loop for the block; yields its base URL."""
    secret = runfile.new_secret()
    app = create_app(registry, settings, health=health, run_secret=secret)
    server = AsgiServer(app, host, port, limits=settings.http)
    await server.start()
    try:
        if write_run_file:
            info = runfile.RunInfo.for_this_process(server.url, utc_now_iso(), ["http"], secret)
            runfile.write_run_file(settings.run_file, info)
        yield server.url
    finally:
        if write_run_file:
            runfile.remove_run_file(settings.run_file, os.getpid())
        begin_shutdown(app)
        await server.stop()


def build_platform(settings: Settings, registry: Registry, host: str, port: int) -> Platform:
    """The components `prvng platform start` runs, HTTP last so it serves a ready platform."""
    platform = Platform(settings, registry)
    provide_ops(registry, settings, settings.nats_dir)
    platform.add_component(StateComponent(registry))
    platform.add_component(OrchestratorComponent(registry))
    platform.add_component(ResourceComponent("nats", registry, Bus))
    platform.add_component(ResourceComponent("keeper", registry, Keeper))
    platform.add_component(ResourceComponent("controller", registry, Controller))

    async def bus_url() -> str:  # PRVNG_NATS_URL, or the bundled server's, once it runs
        return (await registry.resources.get(Bus)).url

    for daemon in daemon_components(settings, registry, bus_url):
        platform.health.add(daemon.name, daemon.status)
        platform.add_component(daemon)
    app = create_app(registry, settings, run_secret=platform.run_secret)
    http = HttpComponent(app, host, port, limits=settings.http)
    platform.health.add(http.name, http.status)
    platform.add_component(http)
    return platform
