"""How fast a second platform on a home already in use is refused.

The refusal must come from the owner lock's non-blocking check, not from waiting: the
baseline is a bare `flock(LOCK_EX | LOCK_NB)` refused on the same lock file in the same run.
"""

from __future__ import annotations

import asyncio
import fcntl
import os
import sys
import tempfile
import time
from pathlib import Path

from bench.common import Sample, print_table, verdict

N = 20
BAR_REFUSAL_S = 2.0


def _bare_refusals(lock_file: Path, n: int) -> Sample:
    latencies = []
    for _ in range(n):
        start = time.perf_counter()
        fd = os.open(lock_file, os.O_RDWR)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            pass
        else:
            raise AssertionError(f"{lock_file} is not held")
        finally:
            os.close(fd)
        latencies.append(time.perf_counter() - start)
    return Sample("bare flock refused", latencies)


async def _platform_refusals(home: Path, n: int) -> tuple[Sample, Sample]:
    from daemons.common.keystore import KeyStore
    from daemons.common.settings import PROJECT_ROOT, Settings
    from registry import Unavailable
    from servers.assembly import build_registry
    from servers.supervisor import build_platform

    settings = Settings(home=home, config_dir=PROJECT_ROOT / "config", cache_dir=home / "cache")
    keystore = KeyStore(settings)
    async with build_registry(settings, keystore=keystore) as registry:
        first = build_platform(settings, registry, "127.0.0.1", 0)
        await first.start()
        try:
            latencies = []
            for _ in range(n):
                async with build_registry(settings, keystore=keystore) as other:
                    second = build_platform(settings, other, "127.0.0.1", 0)
                    start = time.perf_counter()
                    try:
                        await second.start()
                    except Unavailable:
                        latencies.append(time.perf_counter() - start)
                    else:
                        raise AssertionError("a second platform started on a home in use")
            bare = _bare_refusals(settings.state_dir / ".lock", n)
        finally:
            await first.stop()
    return bare, Sample("second platform start refused", latencies)


def main() -> int:
    with tempfile.TemporaryDirectory(prefix="prvng-bench-startup-") as tmp:
        bare, refused = asyncio.run(_platform_refusals(Path(tmp) / "home", N))
    ratio = refused.median_us / bare.median_us
    print_table(
        "Start-up: a second platform on a home in use (µs) and ratio to a bare flock",
        ["measurement", "median µs", "p99 µs", "ratio"],
        [
            [bare.name, f"{bare.median_us:,.0f}", f"{bare.p99_us:,.0f}", ""],
            [refused.name, f"{refused.median_us:,.0f}", f"{refused.p99_us:,.0f}", f"{ratio:.0f}x"],
        ],
    )
    worst_s = max(refused.latencies)
    ok = worst_s <= BAR_REFUSAL_S
    print_table(
        "Start-up: bars",
        ["bar", "measured", "verdict"],
        [[f"refused within {BAR_REFUSAL_S:g} s", f"{worst_s * 1000:.2f} ms (worst)", verdict(ok)]],
    )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
