"""Call statistics every tier shares: counts by outcome and latency histograms per tool.

Plain counters (no exporter dependency here); the HTTP tier publishes them on `/metrics`.
"""

from __future__ import annotations

from bisect import bisect_left
from dataclasses import dataclass, field

BUCKETS_S: tuple[float, ...] = (
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
)  # fmt: skip


@dataclass(slots=True)
class Latency:
    """A cumulative-ready histogram: per-bucket counts (last = +Inf), total and sum."""

    counts: list[int] = field(default_factory=lambda: [0] * (len(BUCKETS_S) + 1))
    total: int = 0
    sum_s: float = 0.0

    def add(self, seconds: float) -> None:
        self.counts[bisect_left(BUCKETS_S, seconds)] += 1
        self.total += 1
        self.sum_s += seconds


class CallStats:
    """What the pipeline has seen since start."""

    def __init__(self) -> None:
        self.calls: dict[tuple[str, str], int] = {}
        self.latency: dict[str, Latency] = {}

    def record(self, tool: str, outcome: str, seconds: float) -> None:
        key = (tool, outcome)
        self.calls[key] = self.calls.get(key, 0) + 1
        latency = self.latency.get(tool)
        if latency is None:
            latency = self.latency[tool] = Latency()
        latency.add(seconds)
