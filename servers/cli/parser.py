"""The `prvng` command tree: built-in commands and one generated command per tool, nested
by the dots of their names (`ops.approval.grant` → `prvng ops approval grant`).

Built-ins come first and win a name clash; a tool that loses one stays reachable through
`prvng call`. Global options are accepted before the command and on every command.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable, Sequence
from contextlib import suppress
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from servers.cli.session import Session

Path = tuple[str, ...]

GLOBAL_OPTIONS: list[tuple[str, dict[str, Any]]] = [
    (
        "--url",
        {
            "metavar": "URL",
            "help": "call the platform at URL (env PRVNG_URL); default: the platform "
            "running on PRVNG_HOME, else run in this process",
        },
    ),
    ("--api-key", {"metavar": "KEY", "help": "API key to send (env PRVNG_API_KEY)"}),
    (
        "--output",
        {
            "choices": ("json", "table"),
            "help": "result format (default: json; a table for `tools list`); with json, a "
            "failure is the JSON envelope on stderr",
        },
    ),
    ("--trace-id", {"metavar": "ID", "help": "trace id for this call (sent as X-Trace-Id)"}),
]


class VersionAction(argparse.Action):
    """`--version`: the installed version, read only when asked (it costs a metadata scan)."""

    def __init__(self, option_strings: Sequence[str], dest: str, **kwargs: Any) -> None:
        super().__init__(option_strings, dest, nargs=0, default=argparse.SUPPRESS, **kwargs)

    def __call__(self, parser: argparse.ArgumentParser, *_args: Any, **_kwargs: Any) -> None:
        print(version_line())
        parser.exit()


def version_line() -> str:
    from daemons.common.version import platform_version

    return f"prvng {platform_version()}"


class HelpFormatter(argparse.RawDescriptionHelpFormatter):
    """Keeps paragraph breaks in descriptions; wider option column."""

    def __init__(self, prog: str) -> None:
        super().__init__(prog, max_help_position=32)


@dataclass(frozen=True, slots=True)
class Command:
    """One leaf command: where it sits, its summary, its arguments and what it runs."""

    path: Path
    summary: str
    configure: Callable[[argparse.ArgumentParser], None]
    run: Callable[[Session, argparse.Namespace], int]
    description: str = ""
    epilog: str = ""
    extras_dest: str | None = None
    """The list that takes positional words argparse left over (`call`'s key=value pairs
    given after an option)."""


def add_global_options(parser: argparse.ArgumentParser) -> None:
    """The options every command takes; a command's own field of the same name wins."""
    group = parser.add_argument_group("global options")
    for flag, kwargs in GLOBAL_OPTIONS:
        with suppress(argparse.ArgumentError):
            group.add_argument(flag, default=argparse.SUPPRESS, **kwargs)


def parse(parser: argparse.ArgumentParser, argv: list[str]) -> argparse.Namespace:
    """Parse `argv`; key=value words after an option go to the command's `extras_dest`.

    Raises SystemExit like argparse (0 after --help, 2 for a bad command line).
    """
    namespace, extras = parser.parse_known_args(argv)
    command: Command = namespace._command
    if extras:
        leaf: argparse.ArgumentParser = namespace._parser
        if command.extras_dest is None or any(word.startswith("-") for word in extras):
            leaf.error(f"unrecognized arguments: {' '.join(extras)}")
        getattr(namespace, command.extras_dest).extend(extras)
    return namespace


def _without_clashes(commands: Sequence[Command]) -> list[Command]:
    """First come wins: a path already taken by a command or a group is skipped."""
    leaves: set[Path] = set()
    groups: set[Path] = set()
    kept: list[Command] = []
    for command in commands:
        path = command.path
        prefixes = {path[:i] for i in range(1, len(path))}
        if path in leaves or path in groups or prefixes & leaves:
            continue
        kept.append(command)
        leaves.add(path)
        groups |= prefixes
    return kept


def _group_summary(children: list[str]) -> str:
    text = ", ".join(children)
    return "commands: " + (text if len(text) <= 60 else text[:57] + "...")


def first_word(argv: Sequence[str]) -> str | None:
    """The command word of `argv` (global options and their values skipped)."""
    takes_value = {flag for flag, _ in GLOBAL_OPTIONS}
    words = iter(argv)
    for word in words:
        if word in takes_value:
            next(words, None)
        elif not word.startswith("-"):
            return word
    return None


def build_parser(
    commands: Sequence[Command], *, argv: Sequence[str], prog: str, description: str, epilog: str
) -> argparse.ArgumentParser:
    """The root parser; each leaf stores itself as `_parser` and its command in `_command`.

    Only the top-level command `argv` names is built in full; the others are one-line
    stubs for the root's help. That keeps start-up flat as the tools grow (~0.5 ms each).
    """
    root = argparse.ArgumentParser(
        prog=prog,
        description=description,
        epilog=epilog,
        formatter_class=HelpFormatter,
        allow_abbrev=False,
    )
    root.add_argument("--version", action=VersionAction, help="print the version and exit")
    add_global_options(root)
    kept = _without_clashes(commands)
    children: dict[Path, list[str]] = {}
    for command in kept:
        for i in range(len(command.path)):
            names = children.setdefault(command.path[:i], [])
            if command.path[i] not in names:
                names.append(command.path[i])
    subparsers: dict[Path, Any] = {}

    def group(path: Path) -> Any:
        if path not in subparsers:
            parser = root
            if path:
                parser = group(path[:-1]).add_parser(
                    path[-1],
                    help=_group_summary(children[path]),
                    description=f"prvng {' '.join(path)}: {_group_summary(children[path])}",
                    formatter_class=HelpFormatter,
                    allow_abbrev=False,
                )
            subparsers[path] = parser.add_subparsers(
                title="commands", metavar="COMMAND", dest=f"_cmd{len(path)}", required=True
            )
        return subparsers[path]

    selected = first_word(argv)
    stubs: set[str] = set()
    for command in kept:
        head = command.path[0]
        if head != selected:
            if head not in stubs:
                stubs.add(head)
                summary = command.summary if len(command.path) == 1 else None
                group(()).add_parser(head, help=summary or _group_summary(children[(head,)]))
            continue
        leaf = group(command.path[:-1]).add_parser(
            command.path[-1],
            help=command.summary,
            description=command.description or command.summary,
            epilog=command.epilog or None,
            formatter_class=HelpFormatter,
            allow_abbrev=False,
        )
        command.configure(leaf)
        add_global_options(leaf)
        leaf.set_defaults(_parser=leaf, _command=command)
    return root
