"""`GET /metrics`: the pipeline's call statistics, the audit sinks' counters (and this
process's) for Prometheus.

Reading them is action `metrics.read` (permission `metrics:read`, in the `read` group, so
viewer and up may): the endpoint is authorized like a tool, though it is none."""

from __future__ import annotations

from collections.abc import Iterator
from itertools import accumulate

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, ProcessCollector
from prometheus_client import generate_latest as render
from prometheus_client.core import CounterMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.registry import Collector
from starlette.responses import Response

from daemons.common.audit_store import AuditStore
from daemons.controller import Controller
from registry import AuditRecord, Principal, Registry, StrictModel, ToolContext, ToolSpec
from registry.audit import DENY, FanOutSink, args_digest
from registry.context import CallTier
from registry.errors import Forbidden
from registry.stats import BUCKETS_S
from registry.timestamps import utc_now_iso


class _NoInput(StrictModel):
    pass


async def _not_a_call(_: _NoInput, __: ToolContext) -> _NoInput:
    raise Forbidden("metrics.read is no tool; GET /metrics reads the metrics")


METRICS_READ = ToolSpec(
    name="metrics.read",
    summary="Read the Prometheus metrics (GET /metrics)",
    input_model=_NoInput,
    output_model=_NoInput,
    handler=_not_a_call,
    permission="metrics:read",
)
"""What the authorizer decides for a scrape (never registered: it is not callable)."""


class _RegistryCollector(Collector):
    """Reads `Registry.stats` at scrape time (nothing extra on the call path)."""

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


class Metrics:
    """The scrape endpoint for one registry."""

    def __init__(self, registry: Registry) -> None:
        self._registry = registry
        self._collectors = CollectorRegistry()
        self._collectors.register(_RegistryCollector(registry))
        ProcessCollector(registry=self._collectors)

    async def scrape(self, principal: Principal, trace_id: str) -> Response:
        """The metrics, or `Forbidden` (audited, as a tool's denial is) unless a policy
        lets `principal` read them."""
        if not self._registry.authorizer.may_call(principal, METRICS_READ):
            await self._registry.audit_sink.record(
                AuditRecord.new(
                    timestamp=utc_now_iso(),
                    trace_id=trace_id,
                    tool=METRICS_READ.name,
                    risk=METRICS_READ.risk.value,
                    principal=principal.id,
                    outcome="forbidden",
                    args_digest=args_digest(None),
                    duration_ms=0.0,
                    tier=CallTier.HTTP,
                    decision=DENY,
                )
            )
            raise Forbidden(
                f"{principal.id} may not read the metrics: no policy allows "
                f"{METRICS_READ.name} ({METRICS_READ.permission!r}) for roles "
                f"{sorted(principal.roles) or '[]'}",
                details={"action": METRICS_READ.name, "permission": METRICS_READ.permission},
            )
        return Response(render(self._collectors), media_type=CONTENT_TYPE_LATEST)
