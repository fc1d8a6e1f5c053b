"""`prvng platform start|stop|status`, `prvng mcp` and `prvng daemon NAME`.

The servers themselves live in `servers.supervisor` and `servers.mcp` (imported only when
a command needs them); this module parses, spawns, waits and reports.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from daemons.common.files import private_dir
from daemons.common.settings import DEFAULT_HOST, DEFAULT_PORT, Settings
from servers.cli.output import dump_json
from servers.cli.parser import Command
from servers.cli.session import Session

START_TIMEOUT_S = 60.0
_POLL_S = 0.1
_DOT_EVERY_S = 0.5


def _host_port(parser: argparse.ArgumentParser, what: str) -> None:
    parser.add_argument(
        "--host", default=DEFAULT_HOST, help=f"{what} address (default: %(default)s)"
    )
    parser.add_argument(
        "--port",
        type=int,
        default=DEFAULT_PORT,
        help="TCP port; 0 picks a free one (default: %(default)s)",
    )


def _configure_start(parser: argparse.ArgumentParser) -> None:
    _host_port(parser, "HTTP listen")
    parser.add_argument(
        "--background",
        action="store_true",
        help="run detached (log: PRVNG_HOME/logs/platform.log); print the URL once healthy",
    )


def _log_tail(path: Path, offset: int, lines: int = 20) -> str:
    try:
        with path.open("rb") as log:
            log.seek(offset)
            text = log.read().decode(errors="replace")
    except OSError:
        return ""
    return "\n".join(text.splitlines()[-lines:])


def _start_background(session: Session, host: str, port: int) -> int:
    """Spawn `prvng platform start` in a new session and wait until /health says 200."""
    import subprocess

    from servers.cli.remote import health_status
    from servers.runfile import read_run_file

    settings = session.settings
    running = read_run_file(settings.run_file)
    if running is not None:
        print(f"a platform already runs on this home (pid {running.pid})", file=sys.stderr)
        print(running.url)
        return 0
    log_path = private_dir(settings.logs_dir, home=settings.home) / "platform.log"
    command = [sys.executable, "-m", "servers.cli", "platform", "start"]
    with log_path.open("ab") as log:
        offset = log.tell()
        child = subprocess.Popen(
            [*command, "--host", host, "--port", str(port)],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    print(f"starting the platform (pid {child.pid}, log {log_path})", end="", file=sys.stderr)
    deadline = time.monotonic() + START_TIMEOUT_S
    next_dot = time.monotonic() + _DOT_EVERY_S
    try:
        while True:
            info = read_run_file(settings.run_file)
            if info is not None and health_status(info.url) == 200:
                print(file=sys.stderr)
                print(info.url)
                return 0
            try:
                code = child.wait(timeout=_POLL_S)
            except subprocess.TimeoutExpired:
                pass
            else:
                print(
                    f"\nerror: the platform exited ({code}) before it was ready:", file=sys.stderr
                )
                print(_log_tail(log_path, offset), file=sys.stderr)
                return code or session.catalog.exit_code("unavailable")
            if time.monotonic() > deadline:
                child.terminate()
                print(
                    f"\nerror: the platform was not healthy within {START_TIMEOUT_S:g} s and was "
                    f"stopped; see {log_path}",
                    file=sys.stderr,
                )
                return session.catalog.exit_code("unavailable")
            if time.monotonic() >= next_dot:
                print(".", end="", file=sys.stderr, flush=True)
                next_dot += _DOT_EVERY_S
    except KeyboardInterrupt:
        child.terminate()
        raise


def _start(session: Session, ns: argparse.Namespace) -> int:
    if ns.background:
        return _start_background(session, ns.host, ns.port)
    from servers.cli.processes import run_platform
    from servers.runfile import read_run_file

    running = read_run_file(session.settings.run_file)
    if running is not None:
        print(
            f"error: a platform already runs on this home at {running.url} (pid {running.pid}); "
            "`prvng platform stop` first",
            file=sys.stderr,
        )
        return session.catalog.exit_code("conflict")

    return run_platform(session.settings, ns.host, ns.port)


def _stop(session: Session, ns: argparse.Namespace) -> int:
    from servers.cli.processes import stop_platform
    from servers.runfile import read_run_file

    info = read_run_file(session.settings.run_file)
    if info is None:
        print(f"no platform is running on {session.settings.home}", file=sys.stderr)
        return 0
    if stop_platform(session.settings):
        print(f"stopped the platform (pid {info.pid})")
        return 0
    print(
        f"error: the platform (pid {info.pid}) did not stop in time; see "
        f"{session.settings.logs_dir / 'platform.log'}",
        file=sys.stderr,
    )
    return 1


def _healthy(status: dict[str, Any]) -> bool:
    health = status.get("health")
    return bool(status.get("running")) and isinstance(health, dict) and health.get("status") == "ok"


def _status_text(status: dict[str, Any], home: Path) -> str:
    if not status.get("running"):
        return f"platform: not running on {home}"
    raw = status.get("health")
    health: dict[str, Any] = raw if isinstance(raw, dict) else {}
    lines = [
        f"platform: running at {status.get('url')} (pid {status.get('pid')})",
        f"health: {health.get('status', 'unknown')}",
    ]
    components = health.get("components")
    for name, comp in (components or {}).items() if isinstance(components, dict) else ():
        ready = "ready" if isinstance(comp, dict) and comp.get("ready") else "NOT READY"
        detail = comp.get("detail", "") if isinstance(comp, dict) else ""
        lines.append(f"  {name:<14} {ready:<9} {detail}".rstrip())
    return "\n".join(lines)


def _configure_status(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", dest="status_json", action="store_true", help="print JSON")


def _status(session: Session, ns: argparse.Namespace) -> int:
    """Exit 0 when a platform runs and is healthy, else the `unavailable` exit code."""
    from servers.cli.processes import platform_status

    status = platform_status(session.settings)
    if ns.status_json or session.output == "json":
        print(dump_json(status))
    else:
        print(_status_text(status, session.settings.home))
    return 0 if _healthy(status) else session.catalog.exit_code("unavailable")


def _configure_mcp(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--transport", choices=("stdio", "http"), default="stdio")
    _host_port(parser, "HTTP listen (with --transport http)")
    parser.add_argument(
        "--toolsets",
        metavar="NAMES",
        help="list only these toolsets, comma-separated (stdio; over HTTP a client asks "
        "with /mcp?toolsets=): servers, taskservs, workflows, tasks, access, secrets, "
        "config, platform",
    )


def _mcp(session: Session, ns: argparse.Namespace) -> int:
    from registry.errors import InvalidInput
    from registry.toolsets import parse_toolsets
    from servers.cli import processes

    toolsets = None
    if ns.toolsets is not None:
        if ns.transport != "stdio":
            print(
                "prvng mcp: --toolsets is for stdio; HTTP clients add ?toolsets= to /mcp",
                file=sys.stderr,
            )
            return 2
        try:
            toolsets = parse_toolsets(ns.toolsets, session.catalog.by_name)
        except InvalidInput as exc:
            print(f"prvng mcp: {exc.message}", file=sys.stderr)
            return 2
    if ns.transport == "stdio":
        processes.run_stdio(session.settings, toolsets)
    else:
        processes.run_http(session.settings, ns.host, ns.port)
    return 0


def _run_http(settings: Settings, host: str, port: int | None) -> int:
    from servers.cli.processes import run_http

    run_http(settings, host, DEFAULT_PORT if port is None else port)
    return 0


def _run_orchestrator(settings: Settings, host: str, port: int | None) -> int:
    from daemons.orchestrator.serving.daemon import DEFAULT_PORT as ORCHESTRATOR_PORT
    from daemons.orchestrator.serving.daemon import run_daemon

    return run_daemon(settings, host, ORCHESTRATOR_PORT if port is None else port)


def _run_keeper(settings: Settings, host: str, port: int | None) -> int:
    from servers.cli.processes import run_ops_daemon

    return run_ops_daemon(settings, "keeper")


def _run_controller(settings: Settings, host: str, port: int | None) -> int:
    from servers.cli.processes import run_ops_daemon

    return run_ops_daemon(settings, "controller")


def _run_ncl_sync(settings: Settings, _host: str, _port: int | None) -> int:
    from daemons.ncl_sync import run_daemon

    return run_daemon(settings)


def _run_audit_mirror(settings: Settings, host: str, port: int | None) -> int:
    """No listener of its own: `host` and `port` do not apply."""
    from daemons.audit_mirror.daemon import run_daemon

    return run_daemon(settings)


DaemonRunner = Callable[[Settings, str, "int | None"], int]

DAEMONS: dict[str, tuple[str, DaemonRunner]] = {
    "http": ("the HTTP daemon: REST, /mcp, OpenAPI, /health (port 8080)", _run_http),
    "orchestrator": ("the workflow engine and its internal API (port 8081)", _run_orchestrator),
    "keeper": ("the ops policy gate and signer, on NATS (PRVNG_NATS_URL)", _run_keeper),
    "controller": ("executes signed ops from NATS on the orchestrator", _run_controller),
    "ncl-sync": ("the config cache for PRVNG_CONFIG (no port)", _run_ncl_sync),
    "audit-mirror": ("ops.audit.> as signed git commits in PRVNG_HOME/audit", _run_audit_mirror),
}


def _configure_daemon(parser: argparse.ArgumentParser) -> None:
    known = "; ".join(f"{name}: {what}" for name, (what, _) in DAEMONS.items())
    parser.add_argument("name", metavar="NAME", help=f"which daemon ({known})")
    parser.add_argument(
        "--host", default=DEFAULT_HOST, help="listen address (default: %(default)s)"
    )
    parser.add_argument(
        "--port", type=int, default=None, help="TCP port; 0 picks a free one (default: per daemon)"
    )


def _daemon(session: Session, ns: argparse.Namespace) -> int:
    entry = DAEMONS.get(ns.name)
    if entry is None:
        return session.usage_error(
            f"unknown daemon {ns.name!r}; known daemons: {', '.join(sorted(DAEMONS))}"
        )
    return entry[1](session.settings, ns.host, ns.port)


def _no_arguments(parser: argparse.ArgumentParser) -> None:
    """`platform stop` takes only the global options."""


def platform_commands() -> list[Command]:
    return [
        Command(
            ("platform", "start"),
            "Run the whole platform (HTTP with /mcp and every component) until stopped",
            _configure_start,
            _start,
            description="Run every component in one process tree; SIGINT/SIGTERM stop it "
            "cleanly. GET /health answers 200 once every component is ready.",
        ),
        Command(
            ("platform", "stop"), "Stop the platform running on PRVNG_HOME", _no_arguments, _stop
        ),
        Command(
            ("platform", "status"),
            "Show whether the platform on PRVNG_HOME runs and is healthy (exit 0 if so)",
            _configure_status,
            _status,
        ),
        Command(
            ("mcp",), "Serve MCP over stdio (default) or streamable HTTP", _configure_mcp, _mcp
        ),
        Command(("daemon",), "Run one daemon alone", _configure_daemon, _daemon),
    ]
