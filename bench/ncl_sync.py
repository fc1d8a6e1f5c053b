"""ncl-sync: a cached read against a cold export of the same file, and warm-up time.

Cold: a fresh cache, so `ConfigCache.read` evaluates through Nickel. Cached: the entry
exists, so the read parses the import graph, hashes every file and loads the JSON (what
every platform config read costs once the daemon has warmed the cache). Workspaces are
generated: small (a few files), large (~7.5 kLoC over 50 imported modules).
"""

from __future__ import annotations

import asyncio
import sys
import tempfile
from pathlib import Path

from bench.common import Sample, measure, print_table, verdict

BAR_RATIO = 20.0
GOAL_RATIO = 100.0


def _module(i: int, fields: int) -> str:
    rows = [
        f'  f{j} = {{ name = "s-{i}-{j}", port = {1000 + j}, tags = ["a", "b"] }},'
        for j in range(fields)
    ]
    return "{\n" + "\n".join(rows) + "\n}\n"


def generate(root: Path, modules: int, fields: int) -> Path:
    """`modules` files of `fields` lines each, all imported by `main.ncl`."""
    root.mkdir(parents=True)
    for i in range(modules):
        (root / f"m{i}.ncl").write_text(_module(i, fields))
    imports = "\n".join(f'  m{i} = import "m{i}.ncl",' for i in range(modules))
    (root / "main.ncl").write_text("{\n" + imports + "\n}\n")
    return root / "main.ncl"


def _compare(tmp: Path, name: str, modules: int, fields: int, n: int) -> tuple[Sample, Sample]:
    from daemons.ncl_sync import ConfigCache

    ws = tmp / name
    main = generate(ws, modules, fields)
    runs = iter(range(10_000))

    def cold() -> object:
        return ConfigCache(tmp / f"cold-{name}-{next(runs)}").read(ws, main)

    cache = ConfigCache(tmp / f"warm-{name}")
    cache.read(ws, main)
    return (
        measure(f"{name}: cold export", cold, n),
        measure(f"{name}: cached read", lambda: cache.read(ws, main), n * 10),
    )


def _warm_up(tmp: Path, files: int) -> float:
    from daemons.ncl_sync import ConfigCache, workspace_files

    ws = tmp / "warm200"
    ws.mkdir()
    for i in range(files):
        (ws / f"f{i}.ncl").write_text(_module(i, 20))
    cache = ConfigCache(tmp / "warm200-cache")
    targets = workspace_files(ws)
    sample = measure("warm", lambda: asyncio.run(cache.warm(ws, targets)), 1, warmup=0)
    assert cache.stats.misses == files
    return sample.latencies[0]


def main() -> int:
    with tempfile.TemporaryDirectory(prefix="prvng-bench-ncl-") as tmp_name:
        tmp = Path(tmp_name)
        small = _compare(tmp, "small", 5, 20, 10)
        large = _compare(tmp, "large", 50, 150, 5)
        warm_s = _warm_up(tmp, 200)
    rows = []
    for cold, cached in (small, large):
        ratio = cold.median_us / cached.median_us
        rows.append([cold.name, f"{cold.median_us:,.0f}", f"{cold.p99_us:,.0f}", ""])
        rows.append(
            [cached.name, f"{cached.median_us:,.0f}", f"{cached.p99_us:,.0f}", f"{ratio:.0f}x"]
        )
    print_table(
        "ncl-sync: cold export vs cached read (µs)",
        ["measurement", "median µs", "p99 µs", "ratio"],
        rows,
    )
    large_ratio = large[0].median_us / large[1].median_us
    ok = large_ratio >= BAR_RATIO
    print_table(
        "ncl-sync: bars",
        ["bar", "measured", "verdict"],
        [
            [
                f"cached ≥ {BAR_RATIO:g}x cold, large (goal {GOAL_RATIO:g}x)",
                f"{large_ratio:.0f}x",
                verdict(ok),
            ],
            ["warm-up, 200 files", f"{warm_s * 1000:,.0f} ms", "info"],
        ],
    )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
