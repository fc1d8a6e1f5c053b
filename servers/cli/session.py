"""One `prvng` run: its settings, the cached catalogue, the global options, and the one
way a command calls a tool and reports the outcome."""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from daemons.common.settings import Settings
from servers.cli.cache import Catalog
from servers.cli.output import is_plan, render_data, render_failure

if TYPE_CHECKING:
    from servers.cli.invoke import Target


@dataclass
class Session:
    settings: Settings
    catalog: Catalog
    namespace: argparse.Namespace

    def option(self, name: str) -> str | None:
        value = getattr(self.namespace, name, None)
        return None if value is None else str(value)

    @property
    def output(self) -> str | None:
        """`json` or `table` when given; None means the command's default."""
        return self.option("output")

    def help_command(self, tool: str | None) -> str:
        """The help that explains a tool's fields: its generated command, if there is one."""
        if tool is not None and tool in self.catalog.by_name:
            return f"prvng {tool.replace('.', ' ')} --help"
        parser: argparse.ArgumentParser = self.namespace._parser
        return f"{parser.prog} --help"

    def target(self) -> Target:
        # Imported here: `http.client` is a third of a fast command's start-up.
        from servers.cli.invoke import resolve_target

        return resolve_target(self.settings, self.option("url"), self.option("api_key"))

    def invoke(self, name: str, args: dict[str, Any]) -> dict[str, Any]:
        """The envelope of one call, run wherever the options and the home say."""
        from servers.cli.invoke import invoke

        tool = self.catalog.by_name.get(name)
        return invoke(self.settings, self.target(), name, args, self.option("trace_id"), tool)

    def report_failure(
        self, envelope: dict[str, Any], *, tool: str | None = None, as_json: bool = False
    ) -> int:
        """Print a failure to stderr (JSON envelope with `--output json`); its exit code."""
        text = render_failure(
            envelope,
            as_json=as_json or self.output == "json",
            help_command=self.help_command(tool),
        )
        print(text, file=sys.stderr)
        error = envelope.get("error") or {}
        return self.catalog.exit_code(str(error.get("code", "internal")))

    def refuse(self, message: str, details: dict[str, Any], *, tool: str) -> int:
        """Report input refused before any call (bad `--json`) as `invalid_input`."""
        from servers.cli.remote import failure_envelope

        envelope = failure_envelope("invalid_input", message, self.option("trace_id"), details)
        return self.report_failure(envelope, tool=tool)

    def call(self, name: str, args: dict[str, Any]) -> int:
        """Call a tool, print its data (JSON unless `--output table`; a plan as a summary
        unless `--output json`); the exit code."""
        envelope = self.invoke(name, args)
        if not envelope.get("ok"):
            return self.report_failure(envelope, tool=name)
        data = envelope.get("data")
        print(render_data(data, self.output or ("table" if is_plan(data) else "json"), args))
        return 0

    def follow(self, name: str, args: dict[str, Any]) -> int:
        """Read stream tool `name`, one JSON line per item, until it ends; the exit code."""
        from servers.cli.invoke import stream

        envelope = stream(self.settings, self.target(), name, args, self._print_item)
        if envelope is not None:
            return self.report_failure(envelope, tool=name)
        return 0

    @staticmethod
    def _print_item(item: dict[str, Any]) -> None:
        print(json.dumps(item, separators=(",", ":")), flush=True)

    def usage_error(self, message: str) -> int:
        """Report a bad command line like argparse does (exit 2)."""
        parser: argparse.ArgumentParser = self.namespace._parser
        parser.print_usage(sys.stderr)
        print(f"{parser.prog}: error: {message}", file=sys.stderr)
        return 2
