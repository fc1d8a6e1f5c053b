"""The platform supervisor: every component in one process, started in order.

A `Component` starts, reports readiness and stops. `Platform` starts components in the
order they were added, stops them in reverse, and answers `/health` from their state.
`run_platform` is `prvng platform start`; `serve` runs only the HTTP tier in the caller's
event loop (tests, the contract harness, benchmarks).
"""

from __future__ import annotations

import asyncio
import logging
import os
import select
import signal
import sys
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, Protocol

from starlette.applications import Starlette

from daemons.common.asgi import AsgiServer
from daemons.common.files import pid_alive
from daemons.common.settings import Settings
from daemons.common.state import StateStore
from registry import PlatformError, Registry
from registry.envelope import utc_now_iso
from registry.errors import exit_code
from servers import runfile
from servers.http import ComponentState, Readiness, begin_shutdown, create_app
from tools.workflow.orchestrator import OrchestratorHandle

log = logging.getLogger("prvng.platform")


class Component(Protocol):
    """One part of the running platform (state store, HTTP, NATS, orchestrator, ...)."""

    name: str

    @property
    def ready(self) -> bool: ...

    @property
    def detail(self) -> str:
        """What `/health` shows next to the component (its URL, its load, why it is down)."""
        ...

    async def start(self) -> None:
        """Return once the component is ready; raise a `PlatformError` if it cannot be."""

    async def stop(self) -> None:
        """Release everything `start` took; must not raise."""


class StateComponent:
    """Opens the state store eagerly, so a locked embedded store fails the start."""

    name = "state"

    def __init__(self, registry: Registry) -> None:
        self.registry = registry
        self.ready = False
        self.detail = "not started"

    async def start(self) -> None:
        store = await self.registry.resources.get(StateStore)
        await store.query("RETURN 1")
        self.ready = True
        self.detail = store.url.split("://", 1)[0]

    async def stop(self) -> None:
        self.ready = False
        self.detail = "stopped"  # the registry closes the store with its resources


class OrchestratorComponent:
    """The workflow engine, started with the platform so recovery resumes work at once."""

    name = "orchestrator"

    def __init__(self, registry: Registry) -> None:
        self.registry = registry
        self._handle: OrchestratorHandle | None = None

    async def start(self) -> None:
        handle = await self.registry.resources.get(OrchestratorHandle)
        if handle.health is None:
            await handle.api.list(limit=1)  # the daemon answers and accepts our token
        self._handle = handle

    @property
    def ready(self) -> bool:
        return self._handle is not None and self._handle.status()[0]

    @property
    def detail(self) -> str:
        return "not started" if self._handle is None else self._handle.status()[1]

    async def stop(self) -> None:
        self._handle = None  # the registry stops the engine with its other resources


class HttpComponent:
    """The HTTP daemon (REST, OpenAPI, `/mcp`) on uvicorn."""

    name = "http"

    def __init__(self, app: Starlette, host: str = "127.0.0.1", port: int = 0) -> None:
        self.app = app
        self.server = AsgiServer(app, host, port)
        self.ready = False
        self.detail = "not started"

    @property
    def url(self) -> str:
        return self.server.url

    async def start(self) -> None:
        await self.server.start()
        self.ready = True
        self.detail = self.server.url

    async def stop(self) -> None:
        self.ready = False
        begin_shutdown(self.app)
        await self.server.stop()
        self.detail = "stopped"


class Platform:
    """Owns the settings, the registry and the components."""

    def __init__(self, settings: Settings, registry: Registry) -> None:
        self.settings = settings
        self.registry = registry
        self.components: list[Component] = []
        self._started: list[Component] = []
        self.run_secret = runfile.new_secret()
        """Goes in the run file; the HTTP tier proves with it that it is this platform."""

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
            log.info("component %s ready (%s)", component.name, component.detail)

    async def stop(self) -> None:
        while self._started:
            component = self._started.pop()
            try:
                await component.stop()
            except Exception:
                log.exception("component %s failed to stop", component.name)

    @property
    def ready(self) -> bool:
        return all(c.ready for c in self.components)

    async def readiness(self) -> dict[str, ComponentState]:
        states = {"registry": ComponentState(True, f"{len(self.registry)} tools")}
        states |= {c.name: ComponentState(c.ready, c.detail) for c in self.components}
        return states


@asynccontextmanager
async def serve(
    registry: Registry,
    settings: Settings,
    host: str = "127.0.0.1",
    port: int = 0,
    *,
    write_run_file: bool = False,
    readiness: Readiness | None = None,
) -> AsyncIterator[str]:
    """Serve the HTTP tier in this event loop for the block; yields its base URL."""
    secret = runfile.new_secret()
    app = create_app(registry, settings, readiness=readiness, run_secret=secret)
    server = AsgiServer(app, host, port)
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
    platform.add_component(StateComponent(registry))
    platform.add_component(OrchestratorComponent(registry))
    app = create_app(
        registry, settings, readiness=platform.readiness, run_secret=platform.run_secret
    )
    platform.add_component(HttpComponent(app, host, port))
    return platform


async def _run(settings: Settings, host: str, port: int) -> int:
    from tools import build_registry
    from tools.auth.keystore import KeyStore

    keystore = KeyStore(settings)
    key_path = keystore.ensure_admin_key()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        async with build_registry(settings, keystore=keystore) as registry:
            platform = build_platform(settings, registry, host, port)
            await platform.start()
            try:
                return await _serve_until_stopped(platform, stop, key_path)
            finally:
                runfile.remove_run_file(settings.run_file, os.getpid())
                await platform.stop()
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)


async def _serve_until_stopped(platform: Platform, stop: asyncio.Event, key_path: Path) -> int:
    http = next(c for c in platform.components if isinstance(c, HttpComponent))
    info = runfile.RunInfo.for_this_process(
        http.url, utc_now_iso(), [c.name for c in platform.components], platform.run_secret
    )
    runfile.write_run_file(platform.settings.run_file, info)
    print(f"platform ready at {http.url} (admin key: {key_path})", flush=True)
    stopped = asyncio.create_task(stop.wait())
    closed = asyncio.create_task(http.server.wait_closed())
    await asyncio.wait({stopped, closed}, return_when=asyncio.FIRST_COMPLETED)
    stopped.cancel()
    if not stop.is_set():
        failure = None if closed.cancelled() else closed.exception()
        print(f"prvng platform: the HTTP server stopped unexpectedly ({failure})", file=sys.stderr)
        return 1
    closed.cancel()
    log.info("stopping (signal received)")
    return 0


def run_platform(settings: Settings, host: str, port: int) -> int:
    """`prvng platform start`: run until SIGINT/SIGTERM; the exit code says how it ended."""
    logging.basicConfig(
        stream=sys.stderr,
        level=logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    try:
        return asyncio.run(_run(settings, host, port))
    except PlatformError as exc:
        print(f"prvng platform: {exc.message}", file=sys.stderr)
        return exit_code(exc.code)


def platform_status(settings: Settings) -> dict[str, Any]:
    """`prvng platform status`: the run file's facts plus the live `/health` answer."""
    info = runfile.read_run_file(settings.run_file)
    if info is None:
        return {"running": False, "url": None, "pid": None, "health": None}
    import httpx

    try:
        response = httpx.get(f"{info.url}/health", timeout=5.0, trust_env=False)
        health: dict[str, Any] = response.json()
    except (httpx.HTTPError, ValueError) as exc:
        health = {"status": "unreachable", "error": str(exc) or type(exc).__name__}
    return {
        "running": True,
        "url": info.url,
        "pid": info.pid,
        "started_at": info.started_at,
        "components": info.components,
        "health": health,
    }


def _wait_for_exit(pid: int, timeout: float) -> bool:
    """True once `pid` has exited: a pidfd event where the OS has one, else a deadline poll."""
    try:
        fd = os.pidfd_open(pid)
    except ProcessLookupError:
        return True
    except (AttributeError, OSError):
        deadline = time.monotonic() + timeout
        while pid_alive(pid) and time.monotonic() < deadline:
            select.select([], [], [], 0.05)
        return not pid_alive(pid)
    try:
        poller = select.poll()
        poller.register(fd, select.POLLIN)
        return bool(poller.poll(int(timeout * 1000)))
    finally:
        os.close(fd)


def stop_platform(settings: Settings, timeout: float = 30.0) -> bool:
    """`prvng platform stop`: SIGTERM the running platform and wait for it to exit.

    The run file is read through `read_run_file`, so a pid now held by another process
    (its start time differs) is never signalled.

    False when no platform runs on this PRVNG_HOME or it did not exit within `timeout`.
    """
    info = runfile.read_run_file(settings.run_file)
    if info is None or info.pid == os.getpid():
        return False
    try:
        os.kill(info.pid, signal.SIGTERM)
    except ProcessLookupError:
        return True
    return _wait_for_exit(info.pid, timeout)
