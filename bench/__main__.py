"""`python -m bench` (`make bench`): every benchmark, one table each; exit 1 if a bar fails."""

from __future__ import annotations

import subprocess
import sys

BENCHMARKS = (
    "bench.tiers",
    "bench.authz",
    "bench.orchestrator",
    "bench.contract_suite",
    "bench.startup",
    "bench.audit_mirror",
)


def main() -> int:
    failed = []
    for module in BENCHMARKS:
        # One process per benchmark: a clean heap and event loop for each measurement.
        if subprocess.run([sys.executable, "-m", module], check=False).returncode != 0:
            failed.append(module)
    if failed:
        print(f"\nbars missed in: {', '.join(failed)}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
