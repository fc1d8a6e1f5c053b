"""Calls refused at the edge, before any principal is known, audited without amplification.

An unauthenticated caller chooses the path and how often it calls, so each refusal must
cost little: the target is cut to `MAX_TARGET` characters; per source address only the
first `detailed` refusals of a window are written one by one, the rest are summed into one
record per outcome (with `count`) when the window ends or the server stops. Each failed
authentication spends one token of its source's budget (`failed_auth` in
`PRVNG_RATE_LIMITS`); once it is spent, the source's requests are answered `rate_limited`
before their credential is checked, so guessing keys costs the guesser, not the platform.
Only failing sources have state, bounded by `max_sources`: refilled ones go first. An IPv6
source is its /64 (`source_of`): one host holds a whole /64, so its addresses are one.
"""

from __future__ import annotations

import ipaddress
import time
from dataclasses import dataclass, field
from itertools import islice

from registry.audit import DENY, AuditRecord, AuditSink, args_digest
from registry.context import CallTier
from registry.errors import PlatformError, RateLimited
from registry.ratelimit import Limit, retry_message
from registry.timestamps import utc_now_iso

MAX_TARGET = 256
DEFAULT_BUDGET = Limit(20 / 60, 20, "20/min")


def source_of(host: str) -> str:
    """The budget key of a client address: IPv4 as is, IPv6 as its /64 network."""
    if ":" not in host:
        return host
    try:
        return str(ipaddress.IPv6Network(f"{host}/64", strict=False))
    except ValueError:
        return host


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
    """Per-source failed-authentication budget and compact audit of refusals (one per server)."""

    def __init__(
        self,
        sink: AuditSink,
        *,
        budget: Limit | None = DEFAULT_BUDGET,
        window_s: float = 60.0,
        detailed: int = 10,
        max_sources: int = 4096,
    ) -> None:
        self._sink = sink
        self.budget = budget
        """None: failed authentications are audited but never held back."""
        self.rate = budget.rate if budget else 1.0
        self.burst = budget.burst if budget else 1
        self.window_s = window_s
        self.detailed = detailed
        self.max_sources = max_sources
        self._sources: dict[str, _Source] = {}

    @property
    def sources(self) -> int:
        """How many failing sources are held."""
        return len(self._sources)

    def _refill(self, state: _Source, now: float) -> float:
        return min(self.burst, state.tokens + (now - state.updated) * self.rate)

    def blocked(self, source: str) -> RateLimited | None:
        """The error to answer, without looking at the credential, once `source` has no
        failures left; None (and no state made) for a source in good standing."""
        state = self._sources.get(source)
        if state is None or self.budget is None:
            return None
        tokens = self._refill(state, time.monotonic())
        if tokens >= 1:
            return None
        retry_after = (1 - tokens) / self.rate
        return RateLimited(
            f"{retry_message(retry_after)}: too many failed authentications from {source}; "
            "then send a valid 'Authorization: Bearer <api key>'",
            details={"retry_after_s": max(0.001, round(retry_after, 3)), "limit": self.budget.text},
        )

    async def failed(self, source: str) -> None:
        """Spend one token of `source`'s budget: its credential was missing or wrong."""
        now = time.monotonic()
        state = await self._state(source, now)
        state.tokens = max(0.0, self._refill(state, now) - 1)
        state.updated = now
        self._sources[source] = self._sources.pop(source)  # the newest: evicted last

    async def _state(self, source: str, now: float) -> _Source:
        state = self._sources.get(source)
        if state is None:
            if len(self._sources) >= self.max_sources:
                await self._evict(now)
            state = self._sources[source] = _Source(float(self.burst), now, now)
        return state

    async def _evict(self, now: float) -> None:
        """Drop the sources whose budget has refilled, then if need be the oldest half,
        writing what they had counted."""
        gone = [s for s, state in self._sources.items() if self._refill(state, now) >= self.burst]
        if len(self._sources) - len(gone) > self.max_sources * 3 // 4:
            refilled = set(gone)
            gone += islice((s for s in self._sources if s not in refilled), len(self._sources) // 2)
        for source in gone:
            await self._write_summed(source, self._sources.pop(source))

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
        state = await self._state(source, now)
        self._sources[source] = self._sources.pop(source)
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
