"""Calls refused at the edge, before any principal is known, audited without amplification.

An unauthenticated caller chooses the path and how often it calls, so each refusal must
cost little: the target is cut to `MAX_TARGET` characters; per source address only the
first `detailed` refusals of a window are written one by one, the rest are summed into one
record per outcome (with `count`) when the window ends or the server stops; and a source
that keeps being refused gets `rate_limited` (a token bucket per source). A valid credential
is never held back by its address's refusals: a local user shares 127.0.0.1 with attackers.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from registry.audit import DENY, AuditRecord, AuditSink, args_digest
from registry.context import CallTier
from registry.errors import PlatformError, RateLimited
from registry.timestamps import utc_now_iso

MAX_TARGET = 256


@dataclass(slots=True)
class _Summed:
    """One refusal to write, or those with one outcome summed up in the current window
    (with the last one's target, trace id and tier)."""

    count: int
    target: str
    trace_id: str
    tier: CallTier | None


@dataclass(slots=True)
class _Source:
    tokens: float
    updated: float
    window_started: float
    written: int = 0
    summed: dict[str, _Summed] = field(default_factory=dict)


class EdgeRefusals:
    """Per-source refusal budget and compact audit of refusals (one per server)."""

    def __init__(
        self,
        sink: AuditSink,
        *,
        window_s: float = 60.0,
        detailed: int = 10,
        rate: float = 1.0,
        burst: int = 20,
        max_sources: int = 4096,
    ) -> None:
        self._sink = sink
        self.window_s = window_s
        self.detailed = detailed
        self.rate = rate
        self.burst = burst
        self.max_sources = max_sources
        self._sources: dict[str, _Source] = {}

    def _state(self, source: str, now: float) -> _Source:
        state = self._sources.get(source)
        if state is None:
            state = self._sources[source] = _Source(float(self.burst), now, now)
        return state

    def over_budget(self, source: str) -> RateLimited | None:
        """Spend one refusal from the source's budget; the error to answer once it is spent."""
        now = time.monotonic()
        state = self._state(source, now)
        state.tokens = min(self.burst, state.tokens + (now - state.updated) * self.rate)
        state.updated = now
        if state.tokens >= 1:
            state.tokens -= 1
            return None
        retry_after = (1 - state.tokens) / self.rate
        return RateLimited(
            f"too many refused requests from {source}; retry in {retry_after:.1f}s "
            "with a valid 'Authorization: Bearer <api key>'",
            details={"retry_after_s": round(retry_after, 3)},
        )

    async def record(
        self,
        source: str,
        target: str,
        err: PlatformError,
        trace_id: str,
        tier: CallTier | None = None,
    ) -> None:
        """Audit one refusal: written now while the window's detail lasts, else counted."""
        now = time.monotonic()
        if source not in self._sources and len(self._sources) >= self.max_sources:
            await self.flush()
            self._sources.clear()
        state = self._state(source, now)
        if now - state.window_started >= self.window_s:
            await self._write_summed(source, state)
            state.window_started, state.written = now, 0
        if state.written < self.detailed:
            state.written += 1
            await self._write(source, _Summed(1, target, trace_id, tier), err.code.value, None)
            return
        summed = state.summed.get(err.code.value)
        if summed is None:
            state.summed[err.code.value] = _Summed(1, target, trace_id, tier)
        else:
            summed.count += 1
            summed.target, summed.trace_id, summed.tier = target, trace_id, tier

    async def flush(self) -> None:
        """Write every pending count (the server is stopping)."""
        for source, state in self._sources.items():
            await self._write_summed(source, state)

    async def _write_summed(self, source: str, state: _Source) -> None:
        for outcome, summed in state.summed.items():
            await self._write(source, summed, outcome, summed.count)
        state.summed.clear()

    async def _write(self, source: str, refusal: _Summed, outcome: str, count: int | None) -> None:
        target = refusal.target
        await self._sink.record(
            AuditRecord.new(
                timestamp=utc_now_iso(),
                trace_id=refusal.trace_id,
                tool=target[:MAX_TARGET],
                risk="unknown",
                principal=None,
                outcome=outcome,
                args_digest=args_digest(None),
                duration_ms=0.0,
                source=source,
                count=count,
                truncated_from=len(target) if len(target) > MAX_TARGET else None,
                tier=refusal.tier,
                decision=DENY,
            )
        )
