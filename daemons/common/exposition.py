"""Prometheus exposition: the collectors the assembly registers, rendered when asked.

Collectors read their counters at render time, so nothing is collected on the call path.
`metrics.read` renders it (and `GET /metrics` serves that text), so a scrape is
authorized, rate-limited and audited like every call.
"""

from __future__ import annotations

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, ProcessCollector
from prometheus_client import generate_latest as _render
from prometheus_client.registry import Collector

CONTENT_TYPE = CONTENT_TYPE_LATEST
"""The text format's media type (`text/plain; version=...`)."""


class Exposition:
    """The given collectors and this process's own (CPU, memory, open files)."""

    def __init__(self, *collectors: Collector) -> None:
        self._collectors = CollectorRegistry()
        for collector in collectors:
            self._collectors.register(collector)
        ProcessCollector(registry=self._collectors)

    def render(self) -> str:
        """Every metric in the text format."""
        return _render(self._collectors).decode()


__all__ = ["CONTENT_TYPE", "Exposition"]
