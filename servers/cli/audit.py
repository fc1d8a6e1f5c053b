"""`prvng audit verify`: the audit repository checked locally (signatures, chain, content,
and completeness against the stream when NATS is reachable)."""

from __future__ import annotations

import argparse
import os
import sys

from servers.cli.output import dump_json
from servers.cli.parser import Command
from servers.cli.session import Session


def _configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--nats-url",
        default=os.environ.get("PRVNG_NATS_URL"),
        help="also check that every event of the audit stream has exactly one commit "
        "(default: PRVNG_NATS_URL; without it, the stream is not consulted)",
    )


def _verify(session: Session, ns: argparse.Namespace) -> int:
    from daemons.audit_mirror.daemon import verify_home

    report = verify_home(session.settings, ns.nats_url)
    print(
        dump_json(
            {
                "ok": report.ok,
                "head": report.head,
                "commits": report.commits,
                "events": len(report.events),
                "problems": [
                    {"kind": p.kind, "commit": p.commit, "detail": p.detail}
                    for p in report.problems
                ],
            }
        )
    )
    for problem in report.problems:
        print(problem, file=sys.stderr)
    return 0 if report.ok else session.catalog.exit_code("conflict")


def audit_commands() -> list[Command]:
    return [
        Command(
            ("audit", "verify"),
            "Check the signed audit repository: signatures, linear history, content, stream",
            _configure,
            _verify,
        )
    ]
