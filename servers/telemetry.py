"""The platform's metrics: the pipeline's call statistics, the audit sinks' counters and
the in-process controller's answers, as one Prometheus collector the assembly registers
in the `Exposition` that `metrics.read` renders."""

from __future__ import annotations

from collections.abc import Iterator
from itertools import accumulate

from prometheus_client.core import CounterMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.registry import Collector

from daemons.common.audit_store import AuditStore
from daemons.controller import Controller
from registry import Registry
from registry.audit import FanOutSink
from registry.stats import BUCKETS_S


class PlatformCollector(Collector):
    """Reads `Registry.stats` and the sinks at scrape time (nothing extra per call)."""

    def __init__(self, registry: Registry) -> None:
        self.registry = registry

    def collect(self) -> Iterator[Metric]:
        stats = self.registry.stats
        calls = CounterMetricFamily(
            "prvng_tool_calls",
            "Tool calls by outcome (ok or error code)",
            labels=["tool", "outcome"],
        )
        for (tool, outcome), count in sorted(stats.calls.items()):
            calls.add_metric([tool, outcome], count)
        yield calls
        latency = HistogramMetricFamily(
            "prvng_tool_call_duration_seconds", "Time in the pipeline per call", labels=["tool"]
        )
        bounds = [*(f"{b:g}" for b in BUCKETS_S), "+Inf"]
        for tool, hist in sorted(stats.latency.items()):
            buckets = list(zip(bounds, accumulate(hist.counts), strict=True))
            latency.add_metric([tool], buckets, hist.sum_s)
        yield latency
        yield from _audit_metrics(self.registry)
        yield from _controller_metrics(self.registry)


def _controller_metrics(registry: Registry) -> Iterator[Metric]:
    """The in-process controller's answers to JetStream (`AckResult`: ack, nak, term)."""
    answers = CounterMetricFamily(
        "prvng_controller_acks", "Controller answers to op messages", labels=["result"]
    )
    if registry.resources.is_open(Controller):
        counts = registry.resources.peek(Controller).counts
        for result in ("ack", "nak", "term"):
            answers.add_metric([result], counts[result])
    yield answers


def _audit_metrics(registry: Registry) -> Iterator[Metric]:
    sink = registry.audit_sink
    if not isinstance(sink, FanOutSink):
        return
    failures = CounterMetricFamily(
        "prvng_audit_sink_failures", "Audit records a sink failed to take", labels=["sink"]
    )
    for name, count in sorted(sink.failures.items()):
        failures.add_metric([name], count)
    yield failures
    for index in (s for s in sink.sinks if isinstance(s, AuditStore)):
        for name, value, what in (
            ("written", index.written, "Audit records written to the SurrealDB index"),
            ("dropped", index.dropped, "Audit records the index never got (queue full)"),
            ("failed_batches", index.failures, "Index batches the store refused (retried)"),
        ):
            yield CounterMetricFamily(f"prvng_audit_index_{name}", what, value=value)


__all__ = ["PlatformCollector"]
