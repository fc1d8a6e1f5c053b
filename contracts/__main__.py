"""`python -m contracts [--format json|table] [--tiers A,B,C,D,E] [--tool NAME]`."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys

from contracts.harness import DEFAULT_TIERS, run_contracts
from registry.errors import PlatformError, exit_code


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m contracts",
        description="Run every tool's contract cases on every tier and compare the answers.",
    )
    parser.add_argument("--format", choices=("json", "table"), default="table")
    parser.add_argument(
        "--tiers",
        default=",".join(DEFAULT_TIERS),
        help="comma-separated tier keys: A direct, B http, C mcp, D cli, E mcp-stdio "
        "(A always runs: it is the reference)",
    )
    parser.add_argument(
        "--tool", action="append", dest="tools", metavar="NAME", help="only this tool (repeatable)"
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        report = asyncio.run(run_contracts(tiers=args.tiers.split(","), tools=args.tools))
    except PlatformError as exc:
        print(f"error: {exc.message}", file=sys.stderr)
        return exit_code(exc.code)
    if args.format == "json":
        print(json.dumps(report.to_dict(), indent=2))
    else:
        print(report.render_table())
    return 0 if report.ok else 1


if __name__ == "__main__":
    sys.exit(main())
