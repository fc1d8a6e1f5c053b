"""The rate-limit step: a token bucket per principal and rate class, bounded in memory.

Each class (`RateClass`: read, write, exec, auth — a tool's `limit_class`) has its own rate
and burst (`PRVNG_RATE_LIMITS`, read by `limits_from`), and a principal has one bucket per
class, so a principal that spends its writes can still read. A refused call answers
`rate_limited` with `details.retry_after_s`.

Memory is bounded per class (`max_buckets`): a bucket that has refilled is the same as no
bucket, so those go first; if that frees too little, the ones created or refused longest
ago go (their principals start again with a full bucket). A principal being refused is
thus the last to go, however many others come and go.

A flood of refused calls must not fill the audit log: per bucket, the pipeline audits the
first `detailed` refusals of a window one by one; the rest are counted here and written as
one record with `count` when the window is over (at the bucket's next call or eviction).
"""

from __future__ import annotations

import math
import re
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from itertools import islice
from typing import Protocol

from registry.audit import AuditRecord, AuditSink, args_digest
from registry.errors import RateLimited
from registry.model import RateClass, ToolSpec
from registry.principal import Principal
from registry.timestamps import utc_now_iso

FAILED_AUTH = "failed_auth"
"""The `PRVNG_RATE_LIMITS` key of the per-source budget of failed authentications."""
DEFAULT_LIMITS = "read=50/s:100,write=10/s:20,exec=2/s:5,auth=1/s:10,failed_auth=20/min"
"""Enough for people, scripts and agents; a flood or a runaway loop stops here."""
_KEYS = (*(c.value for c in RateClass), FAILED_AUTH)
_CLASSES = frozenset(c.value for c in RateClass)
_LIMIT = re.compile(
    r"(?P<n>\d+(?:\.\d+)?)(?:/(?P<per>\d*(?:\.\d+)?)(?P<unit>s|min|m|h))?(?::(?P<burst>\d+))?"
)
_UNIT_S = {"s": 1.0, "m": 60.0, "min": 60.0, "h": 3600.0}


@dataclass(frozen=True, slots=True)
class Limit:
    """`rate` tokens per second, at most `burst` saved up; `text` as configured."""

    rate: float
    burst: int
    text: str


def parse_limit(text: str) -> Limit | None:
    """`10/s`, `10/s:30`, `20/min`, `100/5m:20` (burst defaults to the count); `off`: none."""
    text = text.strip()
    if text == "off":
        return None
    match = _LIMIT.fullmatch(text)
    if match is None:
        raise ValueError(f"rate limit {text!r} is not like '10/s', '10/s:30', '20/min' or 'off'")
    count = float(match["n"])
    window = float(match["per"] or 1) * _UNIT_S[match["unit"] or "s"]
    burst = int(match["burst"]) if match["burst"] else max(1, math.ceil(count))
    if count <= 0 or window <= 0 or burst < 1:
        raise ValueError(f"rate limit {text!r}: the rate and the burst must be positive")
    return Limit(count / window, burst, text)


def limits_from(setting: str | None, uniform: str | None = None) -> dict[str, Limit | None]:
    """The defaults, every principal class set to `uniform` (the older `PRVNG_RATE_LIMIT`)
    when given, then each `key=limit` of `setting` (`PRVNG_RATE_LIMITS`, comma-separated;
    `off` alone turns every limit off)."""
    entries = dict(_entries(DEFAULT_LIMITS))
    if uniform:
        entries.update((c.value, uniform) for c in RateClass)
    if setting and setting.strip() == "off":
        entries = dict.fromkeys(_KEYS, "off")
    elif setting:
        entries.update(_entries(setting))
    return {key: parse_limit(text) for key, text in entries.items()}


def _entries(setting: str) -> Iterable[tuple[str, str]]:
    for item in filter(None, (part.strip() for part in setting.split(","))):
        key, eq, text = item.partition("=")
        key = key.strip()
        if not eq or key not in _KEYS:
            raise ValueError(
                f"PRVNG_RATE_LIMITS entry {item!r} must be KEY=LIMIT with KEY one of {_KEYS}"
            )
        yield key, text


def retry_message(retry_after_s: float) -> str:
    """How every refusal starts, on every tier."""
    return f"rate limited: retry in {max(1, math.ceil(retry_after_s))} s"


class RateLimiter(Protocol):
    """Raises `RateLimited` when the principal has used its budget for the tool's class."""

    async def check(self, principal: Principal, spec: ToolSpec, trace_id: str) -> None: ...


class Unlimited:
    """No limit (a registry built without one)."""

    async def check(self, principal: Principal, spec: ToolSpec, trace_id: str) -> None:
        return None


@dataclass(slots=True)
class _Bucket:
    tokens: float
    updated: float
    window_started: float
    refused: int = 0
    """Refusals in the current window."""
    summed: int = 0
    """Of those, the ones not audited alone (written as one record later)."""
    tool: str = ""
    trace_id: str = ""


class TokenBucketLimiter:
    """One token bucket per (principal, class); summary audit records go to `sink`."""

    def __init__(
        self,
        limits: Mapping[RateClass | str, Limit | None],
        *,
        sink: AuditSink | None = None,
        exempt_roles: Iterable[str] = (),
        max_buckets: int = 16384,
        window_s: float = 60.0,
        detailed: int = 10,
    ) -> None:
        self.limits = {
            RateClass(key): limit
            for key, limit in limits.items()
            if limit is not None and key in _CLASSES
        }
        self._tables: dict[RateClass, dict[str, _Bucket]] = {c: {} for c in self.limits}
        self._sink = sink
        self._exempt = frozenset(exempt_roles)
        self.max_buckets = max_buckets
        self.window_s = window_s
        self.detailed = detailed

    @property
    def buckets(self) -> int:
        """How many buckets are held (not `__len__`: an empty limiter must stay truthy)."""
        return sum(len(table) for table in self._tables.values())

    async def check(self, principal: Principal, spec: ToolSpec, trace_id: str) -> None:
        cls = spec.limit_class
        limit = self.limits.get(cls)
        if limit is None or (self._exempt and not self._exempt.isdisjoint(principal.roles)):
            return
        table = self._tables[cls]
        now = time.monotonic()
        bucket = table.get(principal.id)
        if bucket is None:
            if len(table) >= self.max_buckets:
                await self._evict(table, limit, now)
            bucket = table[principal.id] = _Bucket(float(limit.burst), now, now)
        else:
            bucket.tokens = min(limit.burst, bucket.tokens + (now - bucket.updated) * limit.rate)
            bucket.updated = now
            if bucket.refused and now - bucket.window_started >= self.window_s:
                await self._close_window(principal.id, bucket, now)
        if bucket.tokens >= 1:
            bucket.tokens -= 1
            return
        retry_after = (1 - bucket.tokens) / limit.rate
        table[principal.id] = table.pop(principal.id)  # the newest: evicted last
        if not bucket.refused:
            bucket.window_started = now  # a window of refusals starts with the first
        bucket.refused += 1
        summed = self._sink is not None and bucket.refused > self.detailed
        if summed:
            bucket.summed += 1
            bucket.tool, bucket.trace_id = spec.name, trace_id
        raise RateLimited(
            f"{retry_message(retry_after)} ({cls.value} calls of {principal.id} are limited "
            f"to {limit.text})",
            details={
                "retry_after_s": max(0.001, round(retry_after, 3)),
                "tool": spec.name,
                "class": cls.value,
                "limit": limit.text,
            },
            summed=summed,
        )

    async def _close_window(self, principal_id: str, bucket: _Bucket, now: float) -> None:
        if bucket.summed and self._sink is not None:
            await self._sink.record(
                AuditRecord.new(
                    timestamp=utc_now_iso(),
                    trace_id=bucket.trace_id,
                    tool=bucket.tool,
                    risk="unknown",
                    principal=principal_id,
                    outcome="rate_limited",
                    args_digest=args_digest(None),
                    duration_ms=0.0,
                    count=bucket.summed,
                )
            )
        bucket.window_started, bucket.refused, bucket.summed = now, 0, 0

    async def flush(self) -> None:
        """Write every pending summary (the process is stopping)."""
        now = time.monotonic()
        for table in self._tables.values():
            for principal_id, bucket in table.items():
                if bucket.summed:
                    await self._close_window(principal_id, bucket, now)

    async def _evict(self, table: dict[str, _Bucket], limit: Limit, now: float) -> None:
        """Drop the buckets that have refilled; then, if that freed too little, the oldest
        half. Each pass frees a quarter of the table at least, so its cost is amortised."""
        full = [
            key
            for key, b in table.items()
            if b.tokens + (now - b.updated) * limit.rate >= limit.burst
        ]
        if len(table) - len(full) > self.max_buckets * 3 // 4:
            refilled = set(full)
            full += islice((key for key in table if key not in refilled), len(table) // 2)
        for key in full:
            bucket = table.pop(key)
            if bucket.summed:
                await self._close_window(key, bucket, now)
