"""Run the orchestrator alone: `python -m daemons.orchestrator` or `prvng daemon orchestrator`.

Recovers from the journal, serves the internal API, prints one ready line (no secrets) and
stops cleanly on SIGTERM or SIGINT: event streams end, running attempts get a grace period,
the journal is flushed.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import sys
from collections.abc import Mapping, Sequence

from daemons.common.asgi import AsgiServer
from daemons.common.settings import DEFAULT_HOST, HttpLimits, Settings
from daemons.common.signals import ServerStopped, serve_until, stop_requested
from daemons.common.state import StateStore
from daemons.orchestrator.actions import DEFAULT_MODULES, Action, load_actions
from daemons.orchestrator.engine.scheduler import DEFAULT_CONCURRENCY
from daemons.orchestrator.engine.service import Orchestrator
from daemons.orchestrator.serving.api import create_app
from daemons.orchestrator.serving.token import orchestrator_token
from registry.errors import PlatformError, exit_code

DEFAULT_PORT = 8081
CONCURRENCY_ENV = "PRVNG_ORCHESTRATOR_CONCURRENCY"


def run_daemon(
    settings: Settings,
    host: str = DEFAULT_HOST,
    port: int = DEFAULT_PORT,
    *,
    concurrency: int | None = None,
    action_modules: Sequence[str] = DEFAULT_MODULES,
    grace_s: float = 5.0,
) -> int:
    """Serve until SIGTERM/SIGINT; the process exit status (0 on a clean stop)."""
    logging.basicConfig(
        level=logging.INFO, stream=sys.stderr, format="%(levelname)s %(name)s: %(message)s"
    )
    try:
        if concurrency is None:
            concurrency = int(os.environ.get(CONCURRENCY_ENV) or DEFAULT_CONCURRENCY)
        if concurrency < 1:
            raise ValueError(f"concurrency must be at least 1, got {concurrency}")
        actions = load_actions(action_modules)
    except (ImportError, ValueError) as exc:
        print(f"orchestrator: {exc} (see --help)", file=sys.stderr)
        return 2
    try:
        asyncio.run(
            serve(settings, host, port, concurrency=concurrency, actions=actions, grace_s=grace_s)
        )
    except PlatformError as err:
        print(f"orchestrator: {err.message}", file=sys.stderr)
        return exit_code(err.code)
    return 0


async def serve(
    settings: Settings,
    host: str,
    port: int,
    *,
    concurrency: int = DEFAULT_CONCURRENCY,
    actions: Mapping[str, Action] | None = None,
    grace_s: float = 5.0,
) -> None:
    """Open the state store, recover, serve the API, and shut all of it down on a signal.

    On shutdown, running attempts get `grace_s` to finish; the rest re-run at next start."""
    token = orchestrator_token(settings)
    async with StateStore.open(settings.state_url) as state:
        orchestrator = Orchestrator(settings, actions=actions, state=state, concurrency=concurrency)
        await orchestrator.start()
        try:
            await _serve_api(orchestrator, token, host, port, settings.http)
        finally:
            await orchestrator.stop(grace_s)


async def _serve_api(
    orchestrator: Orchestrator, token: str, host: str, port: int, limits: HttpLimits
) -> None:
    server = AsgiServer(create_app(orchestrator, token), host, port, limits=limits)
    await server.start()
    try:
        with stop_requested() as stop:
            print(f"orchestrator ready on {server.url} (pid {os.getpid()})", flush=True)
            with contextlib.suppress(ServerStopped):  # a crash stops the daemon all the same
                await serve_until(stop, server)
    finally:
        orchestrator.engine.events.close()  # end SSE streams so connections can close
        await server.stop()


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="prvng daemon orchestrator", description=__doc__)
    parser.add_argument("--host", default=DEFAULT_HOST)
    parser.add_argument("--port", type=int, default=DEFAULT_PORT, help="0 picks a free port")
    parser.add_argument(
        "--concurrency",
        type=int,
        default=None,
        help=f"attempts running at once (default ${CONCURRENCY_ENV} or {DEFAULT_CONCURRENCY})",
    )
    parser.add_argument(
        "--actions",
        default=",".join(DEFAULT_MODULES),
        help="action modules to load, comma-separated (default: all of them)",
    )
    parser.add_argument(
        "--grace-s",
        type=float,
        default=5.0,
        help="on SIGTERM, seconds running attempts get to finish (the rest re-run on restart)",
    )
    args = parser.parse_args(argv)
    modules = [m.strip() for m in args.actions.split(",") if m.strip()]
    return run_daemon(
        Settings.from_env(),
        args.host,
        args.port,
        concurrency=args.concurrency,
        action_modules=modules,
        grace_s=args.grace_s,
    )
