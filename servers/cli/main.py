"""`prvng`: the platform's command line.

Every operation is a command generated from the registry's listing (`prvng server register
--name web-1`), and `prvng call TOOL key=value ...` calls any of them. The listing comes
from a cache (`servers.cli.cache`), so start-up imports neither pydantic nor the tools;
the call runs on a platform over HTTP or in this process (`servers.cli.invoke`).
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Any

from daemons.common.settings import Settings
from servers.cli.args import add_tool_arguments, tool_args
from servers.cli.audit import audit_commands
from servers.cli.cache import Catalog, load_catalog
from servers.cli.commands import platform_commands
from servers.cli.ncl_sync import ncl_sync_commands
from servers.cli.output import dump_json, format_table
from servers.cli.parser import Command, build_parser, parse, version_line
from servers.cli.session import Session
from servers.cli.values import parse_assignments
from servers.coercion import UsageError
from servers.jsontext import JsonRejected, loads_object

DESCRIPTION = """\
The Provisioning Platform's command line. Every operation is a command:
`prvng GROUP ACTION --help` shows its fields; `prvng call TOOL key=value ...` calls any.

Calls go to the platform at --url (or PRVNG_URL), else to the platform running on
PRVNG_HOME, else they run in this process."""


def _json_arguments(text: str) -> dict[str, Any]:
    """`--json` as given: inline JSON, `-` for stdin, `@path` for a file (read as bytes, so
    text that is not UTF-8 is refused like on every tier). `JsonRejected` for bad JSON."""
    source: str | bytes
    if text == "-":
        source, what = sys.stdin.buffer.read(), "--json - (stdin)"
    elif text.startswith("@"):
        try:
            source, what = Path(text[1:]).read_bytes(), f"--json {text}"
        except OSError as exc:
            raise UsageError(f"--json: cannot read {text[1:]}: {exc.strerror}") from None
    else:
        source, what = text, "--json"
    return loads_object(source, what)


def _configure_call(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("tool", metavar="TOOL", help="operation name (`prvng tools list`)")
    parser.add_argument(
        "--json",
        dest="call_json",
        metavar="JSON",
        help="the arguments as one JSON object; '-' reads stdin, '@FILE' a file",
    )
    parser.add_argument(
        "assignments",
        nargs="*",
        metavar="key=value",
        help="one argument each, typed by the tool's schema; `labels.env=dev` nests",
    )


def _call(session: Session, ns: argparse.Namespace) -> int:
    if ns.call_json is not None and ns.assignments:
        return session.usage_error("give the arguments as --json or as key=value, not both")
    tool = session.catalog.by_name.get(ns.tool)
    try:
        if ns.call_json is not None:
            args = _json_arguments(ns.call_json)
        else:
            args = parse_assignments(ns.assignments, tool["input_schema"] if tool else {})
    except UsageError as exc:
        return session.usage_error(str(exc))
    except JsonRejected as exc:
        return session.refuse(exc.message, exc.details, tool=ns.tool)
    return session.call(ns.tool, args)


def _tools_list(session: Session, ns: argparse.Namespace) -> int:
    """From the cache, unless filtered or aimed at an explicit --url."""
    args = tool_args(ns)
    as_json = ns.list_json or session.output == "json"
    if args or session.option("url") or session.settings.url:
        envelope = session.invoke("tools.list", args)
        if not envelope.get("ok"):
            return session.report_failure(envelope, tool="tools.list", as_json=as_json)
        listing = envelope.get("data") or {}
    else:
        listing = session.catalog.listing
    tools = listing.get("tools", [])
    print(dump_json(listing) if as_json else format_table(["name", "risk", "summary"], tools))
    return 0


def _describe(tool: dict[str, Any]) -> str:
    facts = [f"risk: {tool['risk']}", f"permission: {tool['permission']}"]
    if tool.get("requires_approval"):
        facts.append("needs approval")
    rest = tool.get("rest")
    if rest:
        facts.append(f"REST: {rest['method']} {rest['path']}")
    return f"{tool['description']}\n\n{', '.join(facts)}"


def _tool_command(tool: dict[str, Any]) -> Command:
    name: str = tool["name"]
    schema: dict[str, Any] = tool["input_schema"]

    def configure(parser: argparse.ArgumentParser) -> None:
        add_tool_arguments(parser, schema)
        if name == "tools.list":
            parser.add_argument(
                "--json", dest="list_json", action="store_true", help="print the listing JSON"
            )
        else:
            parser.add_argument(
                "--json",
                dest="input_json",
                metavar="JSON",
                help="the input as one JSON object ('-' reads stdin, '@FILE' a file); "
                "flags given too override its fields",
            )
        if tool.get("stream"):
            parser.add_argument(
                "--follow",
                action="store_true",
                help="stream: print each item as a JSON line as it comes (Ctrl-C stops)",
            )

    def run(session: Session, ns: argparse.Namespace) -> int:
        try:
            args = _json_arguments(ns.input_json) if ns.input_json is not None else {}
        except UsageError as exc:
            return session.usage_error(str(exc))
        except JsonRejected as exc:
            return session.refuse(exc.message, exc.details, tool=name)
        if getattr(ns, "follow", False):
            return session.follow(name, {**args, **tool_args(ns)})
        return session.call(name, {**args, **tool_args(ns)})

    return Command(
        tuple(name.split(".")),
        tool["summary"],
        configure,
        _tools_list if name == "tools.list" else run,
        description=_describe(tool),
        epilog=f"also: prvng call {name} key=value ... | --json '{{...}}'",
    )


def _commands(catalog: Catalog) -> list[Command]:
    """Built-ins before generated commands (a built-in wins a name clash); `tools` first."""
    call = Command(
        ("call",),
        "Call any operation with key=value or JSON arguments",
        _configure_call,
        _call,
        extras_dest="assignments",
    )
    generated = [_tool_command(tool) for tool in catalog.tools]
    listing = [command for command in generated if command.path == ("tools", "list")]
    others = [command for command in generated if command.path != ("tools", "list")]
    return [*listing, call, *platform_commands(), *ncl_sync_commands(), *audit_commands(), *others]


def _epilog(catalog: Catalog) -> str:
    by_exit: dict[int, list[str]] = {}
    for code, status in sorted(catalog.exit_codes.items(), key=lambda item: item[1]):
        by_exit.setdefault(status, []).append(code)
    rows = "\n".join(f"  {status}  {', '.join(codes)}" for status, codes in by_exit.items())
    return f"exit codes (2 also for a bad command line):\n  0  ok\n{rows}"


def _catalog(settings: Settings) -> Catalog:
    try:
        return load_catalog(settings)
    except Exception as exc:  # a broken tool module must not take `platform stop` down too
        print(
            f"prvng: warning: cannot build the tool listing ({type(exc).__name__}: {exc}); "
            "only built-in commands work",
            file=sys.stderr,
        )
        return Catalog([], {})


def _main(argv: list[str]) -> int:
    if argv == ["--version"]:  # before the settings and the listing: nothing else to load
        print(version_line())
        return 0
    try:
        settings = Settings.from_env()
    except ValueError as exc:
        print(f"prvng: error: {exc}", file=sys.stderr)
        return 2
    catalog = _catalog(settings)
    parser = build_parser(
        _commands(catalog),
        argv=argv,
        prog="prvng",
        description=DESCRIPTION,
        epilog=_epilog(catalog),
    )
    if not argv:
        parser.print_help(sys.stderr)
        return 2
    try:
        ns = parse(parser, argv)
    except SystemExit as exc:  # --help (0) or a bad command line (2)
        return exc.code if isinstance(exc.code, int) else 2 if exc.code else 0
    command: Command = ns._command
    return command.run(Session(settings, catalog, ns), ns)


def main(argv: list[str] | None = None) -> int:
    """The `prvng` entry point; returns the exit code."""
    try:
        return _main(sys.argv[1:] if argv is None else argv)
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:  # the reader left (`prvng tools list | head`): exit quietly
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1
