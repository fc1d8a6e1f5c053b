"""`python -m bench [NAME ...]` (`make bench`): every benchmark (or the named ones, such as
`python -m bench mcp`), one table each; exit 1 if a bar fails."""

from __future__ import annotations

import subprocess
import sys

BENCHMARKS = (
    "bench.tiers",
    "bench.mcp",
    "bench.mcp_modes",
    "bench.authz",
    "bench.audit",
    "bench.orchestrator",
    "bench.contract_suite",
    "bench.startup",
    "bench.ops",
    "bench.ncl_sync",
    "bench.audit_mirror",
)


def main(argv: list[str]) -> int:
    by_name = {module.removeprefix("bench."): module for module in BENCHMARKS}
    if unknown := [name for name in argv if name not in by_name]:
        print(f"unknown benchmark {', '.join(unknown)}; choose from {', '.join(by_name)}")
        return 2
    failed = []
    for module in [by_name[name] for name in argv] or BENCHMARKS:
        # One process per benchmark: a clean heap and event loop for each measurement.
        if subprocess.run([sys.executable, "-m", module], check=False).returncode != 0:
            failed.append(module)
    if failed:
        print(f"\nbars missed in: {', '.join(failed)}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
