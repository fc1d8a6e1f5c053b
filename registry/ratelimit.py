"""The rate-limit step: a token bucket per principal."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Protocol

from registry.errors import RateLimited
from registry.principal import Principal


class RateLimiter(Protocol):
    """Raises `RateLimited` when the principal has used its budget."""

    def check(self, principal: Principal, tool: str) -> None: ...


class Unlimited:
    """The default: no limit (a single-user platform on one machine)."""

    def check(self, principal: Principal, tool: str) -> None:
        return None


@dataclass(slots=True)
class _Bucket:
    tokens: float
    updated: float = field(default_factory=time.monotonic)


class TokenBucketLimiter:
    """`rate` calls per second per principal, with bursts up to `burst`."""

    def __init__(self, rate: float, burst: int) -> None:
        if rate <= 0 or burst < 1:
            raise ValueError("rate must be > 0 and burst >= 1")
        self.rate = rate
        self.burst = burst
        self._buckets: dict[str, _Bucket] = {}

    def check(self, principal: Principal, tool: str) -> None:
        now = time.monotonic()
        bucket = self._buckets.get(principal.id)
        if bucket is None:
            bucket = self._buckets[principal.id] = _Bucket(tokens=float(self.burst), updated=now)
        bucket.tokens = min(self.burst, bucket.tokens + (now - bucket.updated) * self.rate)
        bucket.updated = now
        if bucket.tokens < 1:
            retry_after = (1 - bucket.tokens) / self.rate
            raise RateLimited(
                f"rate limit of {self.rate:g}/s exceeded for {principal.id}; "
                f"retry in {retry_after:.2f}s",
                details={"retry_after_s": round(retry_after, 3), "tool": tool},
            )
        bucket.tokens -= 1
