"""`python -m bench.audit`: what the SurrealDB audit index adds to a write call.

A write tool with an empty handler is called on two registries that differ only in their
audit sink: the JSONL tail alone, or the tail and the SurrealDB index (`AuditStore`, as
assembled). Measured alternately:

- caller's path: the call's own latency (the index only queues the record). Bar: ≤ 10 µs.
- amortised: N calls then a flush of everything queued, per call; this includes the
  background writer's batched inserts, which share the event loop with the calls.
"""

from __future__ import annotations

import asyncio
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.allow_all import AllowAll
from bench.common import measure_pair_async, print_table, verdict
from daemons.common.audit_store import AuditStore
from daemons.common.settings import PROJECT_ROOT, Settings
from daemons.common.state import StateStore
from registry import JsonlAuditSink, Principal, Registry, Risk, StrictModel, ToolSpec
from registry.audit import AuditSink, FanOutSink

N = 5000
FLOOR_US = 10.0
TOOL = "bench.touch"


class _Input(StrictModel):
    name: str = "x"


class _Output(StrictModel):
    ok: bool = True


async def _touch(args: _Input, ctx: Any) -> _Output:
    return _Output()


def _registry(sink: AuditSink) -> Registry:
    registry = Registry(authenticator=_NoKeys(), audit_sink=sink, authorizer=AllowAll())
    registry.add(
        ToolSpec(
            name=TOOL,
            summary="A write call that does nothing (the audit is what is measured)",
            input_model=_Input,
            output_model=_Output,
            handler=_touch,
            permission="bench:write",
            risk=Risk.WRITE,
        )
    )
    return registry


class _NoKeys:
    async def authenticate(self, credential: str) -> Principal | None:
        return None


async def _amortised(
    registry: Registry, owner: Principal, index: AuditStore | None
) -> tuple[float, float, float]:
    """µs per call for N calls that yield to the loop (as a server's do, so the writer runs
    in between) plus the final flush; the p99 and the longest of one call with its yield
    (a batch written on the loop is one stall per 100 calls: 1 %, so p99 alone can miss it)."""
    steps = []
    start = time.perf_counter()
    for _ in range(N):
        step = time.perf_counter()
        await registry.invoke(TOOL, {}, principal=owner)
        await asyncio.sleep(0)
        steps.append(time.perf_counter() - step)
    if index is not None:
        await index.flush()
    ranked = sorted(steps)
    return (time.perf_counter() - start) / N * 1e6, ranked[int(N * 0.99)] * 1e6, ranked[-1] * 1e6


async def run(home: Path) -> list[list[str]]:
    settings = Settings(home=home, config_dir=PROJECT_ROOT / "config", cache_dir=home / "c")
    owner = Principal("bench", frozenset({"admin"}))
    async with StateStore.open("mem://") as state:

        async def store() -> StateStore:
            return state

        index = AuditStore(store)
        tail_only = _registry(FanOutSink([JsonlAuditSink(settings.logs_dir / "a.jsonl")]))
        with_index = _registry(FanOutSink([JsonlAuditSink(settings.logs_dir / "b.jsonl"), index]))
        try:
            base, indexed = await measure_pair_async(
                ("tail only", lambda: tail_only.invoke(TOOL, {}, principal=owner)),
                ("tail + index", lambda: with_index.invoke(TOOL, {}, principal=owner)),
                N,
            )
            await index.flush()
            caller = indexed.median_us - base.median_us
            amortised_base, p99_base, max_base = await _amortised(tail_only, owner, None)
            amortised_index, p99_index, max_index = await _amortised(with_index, owner, index)
            assert index.dropped == 0, f"{index.dropped} records dropped"
            return [
                [
                    "caller's path (median)",
                    f"{base.median_us:.1f}",
                    f"{indexed.median_us:.1f}",
                    f"{caller:.1f}",
                    verdict(caller <= FLOOR_US),
                ],
                [
                    "amortised, writer included",
                    f"{amortised_base:.1f}",
                    f"{amortised_index:.1f}",
                    f"{amortised_index - amortised_base:.1f}",
                    "(info)",
                ],
                [
                    "p99 of a call and its yield",
                    f"{p99_base:.1f}",
                    f"{p99_index:.1f}",
                    f"{p99_index - p99_base:.1f}",
                    "(info)",
                ],
                [
                    "longest call and its yield",
                    f"{max_base:.1f}",
                    f"{max_index:.1f}",
                    f"{max_index - max_base:.1f}",
                    "(info)",
                ],
            ]
        finally:
            await with_index.aclose()
            await tail_only.aclose()


def main() -> int:
    with tempfile.TemporaryDirectory(prefix="prvng-bench-audit-") as tmp:
        rows = asyncio.run(run(Path(tmp)))
    print_table(
        f"Audit index on a write call ({TOOL}, {N} calls each)",
        ["measure", "tail µs", "tail+index µs", "added µs", f"≤ {FLOOR_US:g} µs"],
        rows,
    )
    return 0 if rows[0][4] == "PASS" else 1


if __name__ == "__main__":
    sys.exit(main())
