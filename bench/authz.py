"""`python -m bench.authz`: what authentication + Cedar + rate limit + audit add to a call.

The same read call (`platform.info`) is measured, alternately, on a registry with
security off (a fixed principal, allow-all authorizer, no limit, no audit) and on the
assembled one called with a stored API key (authenticator, Cedar, token bucket, audit)
and with a session token. Floor: ≤ 100 µs median per call (goal ≤ 30 µs).

The rate-limit step alone is measured too (per check, batches of `BATCH`): a principal's
bucket, a full table, a new principal on every call (evictions included), and the edge's
look-up of a source in good standing. Goal: ≤ 2 µs each.
"""

from __future__ import annotations

import asyncio
import dataclasses
import sys
import tempfile
from collections.abc import Awaitable
from pathlib import Path
from typing import Any

from bench.allow_all import AllowAll
from bench.common import measure_pair_async, print_table, verdict
from daemons.common.keystore import KeyStore
from daemons.common.settings import PROJECT_ROOT, Settings
from registry import AuditRecord, Principal, Registry
from registry.ratelimit import TokenBucketLimiter, Unlimited, parse_limit
from registry.refusals import EdgeRefusals
from servers.assembly import build_registry
from tools import all_specs

N = 3000
TOOL = "platform.info"
FLOOR_US, GOAL_US = 100.0, 30.0
BATCH, N_BATCHES = 100, 300
LIMITER_GOAL_US = 2.0


class _NoAudit:
    async def record(self, record: AuditRecord) -> None:
        return None


async def _off(settings: Settings) -> tuple[Registry, Principal]:
    keystore = KeyStore(settings)
    registry = Registry(authenticator=keystore, audit_sink=_NoAudit(), authorizer=AllowAll())
    registry.resources.put(Settings, settings)
    registry.extend(all_specs())
    return registry, keystore.owner()


async def run(home: Path) -> list[list[str]]:
    settings = dataclasses.replace(
        Settings(home=home, config_dir=PROJECT_ROOT / "config", cache_dir=home / "cache"),
        surreal_url="mem://",
        rate_limit="1000000/s",
    )
    off, owner = await _off(settings)
    on = build_registry(settings)
    try:
        await on.invoke("user.create", {"name": "bench", "roles": ["viewer"]}, principal=owner)
        key = (await on.invoke("apikey.create", {"user": "bench"}, principal=owner)).data
        assert isinstance(key, dict)
        session = (await on.invoke("session.login", {}, credential=key["key"])).data
        assert isinstance(session, dict)
        rows = []
        for label, credential in (("API key", key["key"]), ("session token", session["token"])):

            def secured_call(c: str = str(credential)) -> Awaitable[object]:
                return on.invoke(TOOL, {}, credential=c)

            base, secured = await measure_pair_async(
                ("security off", lambda: off.invoke(TOOL, {}, principal=owner)),
                (label, secured_call),
                N,
            )
            extra = secured.median_us - base.median_us
            rows.append(
                [
                    label,
                    f"{base.median_us:.1f}",
                    f"{secured.median_us:.1f}",
                    f"{extra:.1f}",
                    verdict(extra <= FLOOR_US),
                    "met" if extra <= GOAL_US else "not met",
                ]
            )
        return rows
    finally:
        await on.aclose()
        await off.aclose()


async def limiter_rows() -> list[list[str]]:
    """What one `check` costs beyond an empty step (`Unlimited`), per call."""
    spec = next(s for s in all_specs() if s.name == TOOL)
    limit = parse_limit("1000000/s:1000000")
    one = Principal("bench", frozenset({"viewer"}))
    alone = TokenBucketLimiter({"read": limit})
    full = TokenBucketLimiter({"read": limit})
    for n in range(full.max_buckets - 1):
        await full.check(Principal(f"p-{n}"), spec, "t")
    fresh = TokenBucketLimiter({"read": limit}, max_buckets=4096)
    names = iter(Principal(f"new-{n}") for n in range(10**9))
    refusals = EdgeRefusals(_NoAudit())
    none = Unlimited()

    def batch(check: Any) -> Any:
        async def run() -> None:
            for _ in range(BATCH):
                await check()

        return run

    async def empty() -> None:
        await none.check(one, spec, "t")

    async def edge() -> None:
        refusals.blocked("192.0.2.1")

    cases = [
        ("one principal's bucket", lambda: alone.check(one, spec, "t")),
        (f"table full ({full.max_buckets})", lambda: full.check(one, spec, "t")),
        ("new principal each call (evicting)", lambda: fresh.check(next(names), spec, "t")),
        ("edge: source in good standing", edge),
    ]
    rows = []
    for label, check in cases:
        base, timed = await measure_pair_async(
            ("empty step", batch(empty)), (label, batch(check)), N_BATCHES
        )
        extra = (timed.median_us - base.median_us) / BATCH
        rows.append([label, f"{timed.median_us / BATCH:.2f}", f"{extra:.2f}"])
        rows[-1].append(verdict(extra <= LIMITER_GOAL_US))
    return rows


def main() -> int:
    with tempfile.TemporaryDirectory(prefix="prvng-bench-authz-") as tmp:
        rows = asyncio.run(run(Path(tmp)))
    print_table(
        f"Security steps per call ({TOOL}, median of {N}, security off measured alongside)",
        ["credential", "off µs", "on µs", "added µs", f"≤ {FLOOR_US:g} µs", f"goal {GOAL_US:g}"],
        rows,
    )
    limits = asyncio.run(limiter_rows())
    print_table(
        f"Rate-limit step per check (median of {N_BATCHES} batches of {BATCH})",
        ["case", "µs", "over an empty step µs", f"≤ {LIMITER_GOAL_US:g} µs"],
        limits,
    )
    return 0 if all(row[4] == "PASS" for row in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
