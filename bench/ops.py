"""`python -m bench.ops`: the ops plane end to end against a bare JetStream loop.

An op is measured from `Keeper.request` to its `succeeded` audit event: decided by the
shipped policy, signed (EdDSA), published to `ops.pending.<type>`, pulled, verified,
recorded in the ledger, dispatched to the in-process orchestrator, its no-op workflow
done and audited. Rows: throughput with `CONCURRENCY` ops in flight, and latency at
`OFFERED_PER_S` offered (open loop). Baseline in the same run, on the same nats-server
(`sync_interval: always`): a bare publish → pull → ack loop on a file stream.
Floors: ≥ 300 ops/s, p99 ≤ 100 ms at 100 ops/s offered, ≥ 25 % of the bare loop.

The orchestrator journals each workflow in its own file and fsyncs each one: on a busy
disk that alone caps no-op workflows well below the floors (its own bench and bars are in
`bench.orchestrator`). So the barred rows keep the orchestrator's journal on tmpfs
(`/dev/shm`, where there is one) and nats-server's store on disk, and measure the ops
plane; one more row runs everything on disk, with the orchestrator alone beside it.
"""

from __future__ import annotations

import asyncio
import contextlib
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.js.api import StorageType, StreamConfig

from bench.common import print_table, verdict
from daemons.bus import AUDIT_PREFIX, NatsServer, connect, ensure_streams
from daemons.common.settings import PROJECT_ROOT, Settings
from daemons.common.state import StateStore
from daemons.controller import Controller, OrchestratorDispatcher, TokenVerifier
from daemons.keeper import Keeper, load_policy
from daemons.ops import AuditEvent, KeyRing, OpPlan, OpRequest, OpTarget, verification_keys
from daemons.orchestrator.actions import load_actions
from daemons.orchestrator.engine.service import Orchestrator
from daemons.orchestrator.model import WorkflowSpec
from registry.principal import Principal

N_THROUGHPUT = 2000
N_DISK = 500
CONCURRENCY = 64
OFFERED_PER_S = 100
LATENCY_SECONDS = 5
FLOOR_OPS_S, GOAL_OPS_S = 300.0, 1000.0
FLOOR_P99_MS, GOAL_P99_MS = 100.0, 20.0
FLOOR_RATIO, GOAL_RATIO = 0.25, 0.50
REQUESTER = Principal(id="bench", roles=frozenset({"operator"}))


def _op(i: int) -> OpRequest:
    workflow = {"name": f"bench-{i}", "tasks": [{"id": "t", "action": "noop"}]}
    return OpRequest(
        type="server.create",
        target=OpTarget(name=f"web-{i}", provider="local", labels={"env": "dev"}),
        params={"name": f"web-{i}"},
        plan=OpPlan(workflow=workflow),
    )


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * q))]


def _settings(home: Path) -> Settings:
    return Settings(home=home, config_dir=PROJECT_ROOT / "config", cache_dir=home)


async def _orchestrator_alone(home: Path, n: int, concurrency: int) -> float:
    """Submit → no-op done through the orchestrator only: workflows per second."""
    async with StateStore.open("mem://") as state:
        orch = Orchestrator(_settings(home), actions=load_actions(["noop"]), state=state)
        await orch.start()
        try:

            async def one(i: int) -> None:
                spec = WorkflowSpec.model_validate(_op(i).plan.workflow)
                await orch.submit(spec, workflow_id=f"op-{i:032x}")
                await orch.wait(f"op-{i:032x}", timeout_s=30)

            return await _closed_loop(n, concurrency, one)
        finally:
            await orch.stop()


class _Plane:
    """Keeper, one controller and an orchestrator in this process, on one nats-server."""

    def __init__(self, home: Path, url: str) -> None:
        self.home, self.url = home, url
        self.done: dict[str, asyncio.Future[float]] = {}
        self.early: dict[str, float] = {}

    async def __aenter__(self) -> _Plane:
        settings = _settings(self.home)
        self._stack = contextlib.AsyncExitStack()
        state = await self._stack.enter_async_context(StateStore.open("mem://"))
        orch = Orchestrator(settings, actions=load_actions(["noop"]), state=state)
        await orch.start()
        self._stack.push_async_callback(orch.stop)
        self.nc = await connect(self.url, name="bench-keeper")
        self._stack.push_async_callback(self.nc.close)
        await ensure_streams(self.nc.jetstream())
        keys = KeyRing(settings.keys_dir).load()
        policy = load_policy(PROJECT_ROOT / "config" / "keeper_policy.ncl")
        self.keeper = Keeper(policy=policy, keys=keys, state=state, js=self.nc.jetstream())
        controller_nc = await connect(self.url, name="bench-controller")
        self._stack.push_async_callback(controller_nc.close)
        controller = Controller(
            nc=controller_nc,
            state=state,
            verifier=TokenVerifier(verification_keys(keys.jwks())),
            dispatcher=OrchestratorDispatcher(orch),
        )
        await controller.start()
        self._stack.push_async_callback(controller.stop)
        await self.nc.subscribe(AUDIT_PREFIX + "succeeded", cb=self._succeeded)
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self._stack.aclose()

    async def _succeeded(self, msg: Msg) -> None:
        event = AuditEvent.model_validate_json(msg.data)
        op_id, now = event.op_id or "", time.perf_counter()
        future = self.done.get(op_id)
        if future is None:  # done before `request` returned: kept for `one` to find
            self.early[op_id] = now
        elif not future.done():
            future.set_result(now)

    async def one(self, i: int) -> float:
        """One op end to end; its latency in seconds."""
        start = time.perf_counter()
        decision = await self.keeper.request(_op(i), REQUESTER)
        early = self.early.pop(decision.op_id, None)
        if early is not None:
            return early - start
        future: asyncio.Future[float] = asyncio.get_running_loop().create_future()
        self.done[decision.op_id] = future
        end = await asyncio.wait_for(future, 30)
        del self.done[decision.op_id]
        return end - start


async def _closed_loop(n: int, concurrency: int, one: object) -> float:
    """`n` calls with `concurrency` in flight; calls per second."""
    assert callable(one)
    queue = iter(range(n))

    async def worker() -> None:
        for i in queue:
            await one(i)

    start = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return n / (time.perf_counter() - start)


async def _open_loop(plane: _Plane, per_s: int, seconds: int) -> list[float]:
    tasks = []
    start = time.perf_counter()
    for i in range(per_s * seconds):
        delay = start + i / per_s - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)  # the offered rate's schedule, not a wait for a state
        tasks.append(asyncio.create_task(plane.one(10_000_000 + i)))
    return list(await asyncio.gather(*tasks))


async def _bare(nc: Client, n: int, concurrency: int) -> tuple[float, list[float]]:
    """publish (PubAck) → pull → ack on a file stream: msgs/s and per-message latency."""
    js = nc.jetstream()
    await js.add_stream(StreamConfig(name="BENCH", subjects=["bench.>"], storage=StorageType.FILE))
    sub = await js.pull_subscribe("bench.>", durable="bench", stream="BENCH")
    sent: dict[int, float] = {}
    latencies: list[float] = []

    async def consume() -> None:
        while len(latencies) < n:
            with contextlib.suppress(TimeoutError):
                for msg in await sub.fetch(64, timeout=1):
                    await msg.ack()
                    latencies.append(time.perf_counter() - sent[int(msg.data)])

    queue = iter(range(n))

    async def produce() -> None:
        for i in queue:
            sent[i] = time.perf_counter()
            await js.publish("bench.x", str(i).encode())

    start = time.perf_counter()
    consumer = asyncio.create_task(consume())
    await asyncio.gather(*(produce() for _ in range(concurrency)))
    await consumer
    return n / (time.perf_counter() - start), latencies


@dataclass
class Results:
    bare_per_s: float = 0.0
    bare_latencies: list[float] = field(default_factory=list)
    e2e_per_s: float = 0.0
    latencies: list[float] = field(default_factory=list)
    disk_e2e_per_s: float = 0.0
    disk_orchestrator_per_s: float = 0.0


async def run(disk: Path, fast: Path) -> Results:
    results = Results()
    server = NatsServer(disk / "nats")
    server.start()
    try:
        nc = await connect(server.url, name="bench-bare")
        try:
            results.bare_per_s, results.bare_latencies = await _bare(nc, N_THROUGHPUT, CONCURRENCY)
        finally:
            await nc.close()
        async with _Plane(fast / "plane", server.url) as plane:
            await _closed_loop(100, 8, plane.one)  # warm-up
            results.e2e_per_s = await _closed_loop(N_THROUGHPUT, CONCURRENCY, plane.one)
            results.latencies = await _open_loop(plane, OFFERED_PER_S, LATENCY_SECONDS)
        async with _Plane(disk / "plane", server.url) as plane:
            results.disk_e2e_per_s = await _closed_loop(N_DISK, CONCURRENCY, plane.one)
        results.disk_orchestrator_per_s = await _orchestrator_alone(
            disk / "alone", N_DISK, CONCURRENCY
        )
    finally:
        server.stop()
    return results


def main() -> int:
    shm = Path("/dev/shm")
    with (
        tempfile.TemporaryDirectory(prefix="prvng-bench-ops-") as disk,
        tempfile.TemporaryDirectory(
            prefix="prvng-bench-ops-", dir=shm if shm.is_dir() else None
        ) as fast,
    ):
        r = asyncio.run(run(Path(disk), Path(fast)))
    e2e, latencies = r.e2e_per_s, r.latencies
    p50, p99 = statistics.median(latencies) * 1e3, _pct(latencies, 0.99) * 1e3
    ratio = e2e / r.bare_per_s
    bare_p50 = statistics.median(r.bare_latencies) * 1e3
    bare_p99 = _pct(r.bare_latencies, 0.99) * 1e3
    print_table(
        "Ops plane end to end (request → succeeded audit event) vs a bare JetStream loop "
        f"(nats store on disk, sync always), {CONCURRENCY} in flight",
        ["measurement", "ops/s", "p50 ms", "p99 ms"],
        [
            [
                "bare publish → pull → ack",
                f"{r.bare_per_s:,.0f}",
                f"{bare_p50:.1f}",
                f"{bare_p99:.1f}",
            ],
            [f"ops end to end ({N_THROUGHPUT} ops, journal on tmpfs)", f"{e2e:,.0f}", "", ""],
            [
                f"ops at {OFFERED_PER_S}/s offered ({len(latencies)} ops, journal on tmpfs)",
                "",
                f"{p50:.1f}",
                f"{p99:.1f}",
            ],
            [f"ops end to end ({N_DISK} ops, journal on disk)", f"{r.disk_e2e_per_s:,.0f}", "", ""],
            [
                f"orchestrator alone ({N_DISK} no-op workflows, journal on disk)",
                f"{r.disk_orchestrator_per_s:,.0f}",
                "",
                "",
            ],
        ],
    )
    bars = [
        (f"≥ {FLOOR_OPS_S:g} ops/s", f"{e2e:,.0f}", e2e >= FLOOR_OPS_S, e2e >= GOAL_OPS_S),
        (
            f"p99 ≤ {FLOOR_P99_MS:g} ms at {OFFERED_PER_S}/s",
            f"{p99:.1f} ms",
            p99 <= FLOOR_P99_MS,
            p99 <= GOAL_P99_MS,
        ),
        (
            f"≥ {FLOOR_RATIO:.0%} of the bare loop",
            f"{ratio:.0%}",
            ratio >= FLOOR_RATIO,
            ratio >= GOAL_RATIO,
        ),
    ]
    print_table(
        "Ops plane: bars",
        ["bar", "measured", "verdict", "goal"],
        [[b, m, verdict(ok), "met" if goal else "not met"] for b, m, ok, goal in bars],
    )
    return 0 if all(ok for _, _, ok, _ in bars) else 1


if __name__ == "__main__":
    sys.exit(main())
