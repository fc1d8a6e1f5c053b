"""The contract suite's wall time: the whole run and each tier, against tier A.

Tier A (the registry called directly) is the in-run baseline: a tier's ratio to it is what
its wire costs over the same cases. The bar is the one CI relies on: a full run in a minute.
"""

from __future__ import annotations

import asyncio
import sys
import tempfile
from pathlib import Path

from bench.common import print_table, verdict

BAR_FULL_RUN_S = 60.0


def main() -> int:
    from contracts import run_contracts

    with tempfile.TemporaryDirectory(prefix="prvng-bench-contracts-") as tmp:
        report = asyncio.run(run_contracts(workdir=Path(tmp)))
    baseline = report.tier_s["A"]
    rows = [["full run (tiers concurrently)", f"{report.elapsed_s:.2f}", ""]]
    rows += [
        [f"tier {tier}", f"{seconds:.2f}", f"{seconds / baseline:.2f}x"]
        for tier, seconds in sorted(report.tier_s.items())
    ]
    print_table(
        "Contract suite: seconds per run and ratio to tier A (direct)",
        ["measurement", "seconds", "ratio"],
        rows,
    )
    bars = [
        ("every case passes", "yes" if report.ok else "no", report.ok),
        (
            f"full run ≤ {BAR_FULL_RUN_S:g} s",
            f"{report.elapsed_s:.1f} s",
            report.elapsed_s <= BAR_FULL_RUN_S,
        ),
    ]
    print_table(
        "Contract suite: bars",
        ["bar", "measured", "verdict"],
        [[b, m, verdict(ok)] for b, m, ok in bars],
    )
    return 0 if all(ok for _, _, ok in bars) else 1


if __name__ == "__main__":
    sys.exit(main())
