"""Timing helpers and the table format every benchmark prints."""

from __future__ import annotations

import statistics
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Sample:
    """Latencies of one measured operation, in seconds."""

    name: str
    latencies: list[float]

    @property
    def median_us(self) -> float:
        return statistics.median(self.latencies) * 1e6

    @property
    def p99_us(self) -> float:
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))] * 1e6

    @property
    def per_second(self) -> float:
        return len(self.latencies) / sum(self.latencies) if self.latencies else 0.0


async def measure_async(
    name: str, op: Callable[[], Awaitable[object]], n: int, warmup: int = 50
) -> Sample:
    for _ in range(warmup):
        await op()
    latencies = []
    for _ in range(n):
        start = time.perf_counter()
        await op()
        latencies.append(time.perf_counter() - start)
    return Sample(name, latencies)


async def measure_pair_async(
    a: tuple[str, Callable[[], Awaitable[object]]],
    b: tuple[str, Callable[[], Awaitable[object]]],
    n: int,
    warmup: int = 50,
) -> tuple[Sample, Sample]:
    """Two operations measured alternately, so drift (a growing table, a busy neighbour)
    weighs on both alike: for differences such as `invoke - handler`."""
    for _ in range(warmup):
        await a[1]()
        await b[1]()
    times_a, times_b = [], []
    for _ in range(n):
        start = time.perf_counter()
        await a[1]()
        middle = time.perf_counter()
        await b[1]()
        times_b.append(time.perf_counter() - middle)
        times_a.append(middle - start)
    return Sample(a[0], times_a), Sample(b[0], times_b)


def measure(name: str, op: Callable[[], object], n: int, warmup: int = 2) -> Sample:
    for _ in range(warmup):
        op()
    latencies = []
    for _ in range(n):
        start = time.perf_counter()
        op()
        latencies.append(time.perf_counter() - start)
    return Sample(name, latencies)


def print_table(title: str, headers: list[str], rows: list[list[str]]) -> None:
    """A plain, aligned text table (what `make bench` prints and notes quote)."""
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(headers)]
    line = "  ".join("-" * w for w in widths)
    print(f"\n## {title}\n")
    print("  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True)))
    print(line)
    for row in rows:
        print("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)))


def verdict(ok: bool) -> str:
    return "PASS" if ok else "FAIL"
