"""The processes the CLI runs: `prvng platform start|stop|status`, `prvng mcp`.

Each entry point builds the system (`servers.assembly`), runs it until it is told to stop
(SIGINT/SIGTERM, or stdin closing for stdio MCP) and answers an exit code. The tiers and
the supervisor know nothing of processes; this module knows nothing of operations.
"""

from __future__ import annotations

import asyncio
import logging
import os
import select
import signal
import sys
import time
from pathlib import Path
from typing import Any

from daemons.common.files import pid_alive
from daemons.common.keystore import KeyStore
from daemons.common.settings import Settings
from daemons.common.signals import ServerStopped, serve_until, stop_requested
from daemons.common.version import platform_version
from registry import PlatformError
from registry.context import TIER_HEADER, CallTier
from registry.errors import exit_code
from registry.timestamps import utc_now_iso
from servers import runfile
from servers.assembly import build_registry, local_principal
from servers.http.mcp_gate import TOOLSETS_PARAM
from servers.mcp import INSTRUCTIONS, SERVER_NAME, UnknownTools, build_mcp
from servers.mcp.relay import relaying
from servers.stdio import serve_stdio
from servers.supervisor import HttpComponent, Platform, build_platform

log = logging.getLogger("prvng.platform")


async def _run(settings: Settings, host: str, port: int) -> int:
    keystore = KeyStore(settings)
    key_path = keystore.ensure_admin_key()
    with stop_requested() as stop:
        async with build_registry(settings, keystore=keystore) as registry:
            platform = build_platform(settings, registry, host, port)
            await platform.start()
            try:
                return await _serve_until_stopped(platform, stop, key_path)
            finally:
                runfile.remove_run_file(settings.run_file, os.getpid())
                await platform.stop()


async def _serve_until_stopped(platform: Platform, stop: asyncio.Event, key_path: Path) -> int:
    http = next(c for c in platform.components if isinstance(c, HttpComponent))
    info = runfile.RunInfo.for_this_process(
        http.url, utc_now_iso(), [c.name for c in platform.components], platform.run_secret
    )
    runfile.write_run_file(platform.settings.run_file, info)
    print(f"platform ready at {http.url} (admin key: {key_path})", flush=True)
    try:
        await serve_until(stop, http.server)
    except ServerStopped as exc:
        print(f"prvng platform: {exc} ({exc.__cause__})", file=sys.stderr)
        return 1
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
    """`prvng platform status`: the run file's facts plus the live `/health` answer (with
    the home's key only once the listener has proved it is the platform that file names)."""
    from servers.cli.invoke import resolve_target
    from servers.cli.remote import health

    info = runfile.read_run_file(settings.run_file)
    if info is None:
        return {"running": False, "url": None, "pid": None, "health": None}
    target = resolve_target(settings, None, None)
    if target.url is None:  # the listener failed the run file's challenge: not our platform
        answer = {"status": "unverified", "error": f"{info.url} is not the platform it names"}
    else:
        answer = health(info.url, target.api_key)
    return {
        "running": True,
        "url": info.url,
        "pid": info.pid,
        "started_at": info.started_at,
        "components": info.components,
        "health": answer,
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


def _log_to_stderr() -> None:
    """stdout carries the MCP protocol on stdio; every log line goes to stderr."""
    logging.basicConfig(
        stream=sys.stderr, level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s"
    )


async def _serve_stdio(settings: Settings, toolsets: frozenset[str] | None) -> None:
    keystore = KeyStore(settings)
    async with build_registry(settings, keystore=keystore) as registry:
        principal = await local_principal(settings, registry, keystore)
        await serve_stdio(build_mcp(registry, principal=principal, toolsets=toolsets))


async def _proxy_stdio(settings: Settings, url: str, toolsets: frozenset[str] | None) -> None:
    """Relay stdio to a running platform's `/mcp`, so one process owns the embedded store."""
    from fastmcp.client.transports import StreamableHttpTransport
    from fastmcp.server import create_proxy

    key = settings.api_key or KeyStore(settings).ensure_admin_key().read_text().strip()
    query = f"?{TOOLSETS_PARAM}={','.join(sorted(toolsets))}" if toolsets else ""

    def transport() -> StreamableHttpTransport:
        # Names the relay in the platform's audit as stdio MCP (`servers.wire.request_tier`).
        headers = {TIER_HEADER: CallTier.MCP_STDIO.value}
        return StreamableHttpTransport(f"{url}/mcp{query}", auth=key, headers=headers)

    proxy = create_proxy(
        transport(),
        name=SERVER_NAME,
        version=platform_version(),
        instructions=INSTRUCTIONS,
        middleware=[UnknownTools()],
        dereference_schemas=False,  # the platform's schemas, as it lists them
    )
    async with relaying(proxy, transport()):  # completions and subscriptions
        await serve_stdio(proxy)


def run_stdio(settings: Settings, toolsets: frozenset[str] | None = None) -> None:
    """`prvng mcp`: serve MCP on stdin/stdout until the client closes it (listing only
    `toolsets` when given)."""
    _log_to_stderr()
    from servers.cli.remote import proves_run

    info = runfile.read_run_file(settings.run_file)
    if info is not None and not proves_run(info):
        print(
            f"prvng mcp: {info.url} is not the platform that wrote {settings.run_file} "
            "(it failed the run file's challenge); serving in-process",
            file=sys.stderr,
        )
        info = None
    if info is not None:
        asyncio.run(_proxy_stdio(settings, info.url, toolsets))
    else:
        asyncio.run(_serve_stdio(settings, toolsets))


def run_http(settings: Settings, host: str, port: int) -> None:
    """`prvng mcp --transport http`: the full HTTP daemon, which serves `/mcp`."""
    code = run_platform(settings, host, port)
    if code:
        raise SystemExit(code)


async def _run_ops_daemon(settings: Settings, name: str) -> None:
    from daemons.controller import Controller
    from daemons.keeper import Keeper
    from servers.assembly import provide_ops

    key: type = Keeper if name == "keeper" else Controller
    with stop_requested() as stop:
        async with build_registry(settings) as registry:
            provide_ops(registry, settings, settings.nats_dir)
            await registry.resources.get(key)
            print(f"{name} running (NATS {settings.nats_url or 'bundled'})", flush=True)
            await stop.wait()


def run_ops_daemon(settings: Settings, name: str) -> int:
    """`prvng daemon keeper|controller`: that part of the ops plane alone (a controller
    executes through `PRVNG_ORCHESTRATOR_URL` when set), until SIGINT/SIGTERM."""
    logging.basicConfig(
        stream=sys.stderr, level=logging.INFO, format="%(levelname)s %(name)s: %(message)s"
    )
    try:
        asyncio.run(_run_ops_daemon(settings, name))
    except PlatformError as exc:
        print(f"{name}: {exc.message}", file=sys.stderr)
        return exit_code(exc.code)
    return 0
