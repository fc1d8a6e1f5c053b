"""`python -m bench.ops`: the ops plane end to end against a bare JetStream loop.

An op is measured from `Keeper.request` to its `succeeded` audit event: decided by the
shipped policy, signed (EdDSA), published to `ops.pending.<type>`, pulled, verified,
recorded in the ledger, dispatched to the orchestrator, its no-op workflow done and
audited. Two shapes (`bench.ops_plane`): everything in one process, and as deployed,
the keeper and the controller (with its orchestrator) as separate daemons, two
processes. Rows per shape: throughput with `CONCURRENCY` ops in flight (and the CPU it
cost per op, both processes together: the figure that holds on a busy machine), and
latency at `OFFERED_PER_S` offered (open loop). Baseline in the same run, on the same
nats-server (`sync_interval: always`): a bare publish → pull → ack loop on a file stream.
Floors: ≥ 300 ops/s, p99 ≤ 100 ms at 100 ops/s offered, ≥ 25 % of the bare loop; they
decide on the deployed shape, the one-process figures are shown against them beside it.

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
from nats.js.api import StorageType, StreamConfig

from bench.common import print_table, verdict
from bench.ops_plane import Plane, SplitPlane, bench_op, bench_settings
from daemons.bus import NatsServer, connect
from daemons.common.state import StateStore
from daemons.orchestrator.actions import load_actions
from daemons.orchestrator.engine.service import Orchestrator
from daemons.orchestrator.model import WorkflowSpec

N_THROUGHPUT = 2000
N_DISK = 500
CONCURRENCY = 64
OFFERED_PER_S = 100
LATENCY_SECONDS = 5
FLOOR_OPS_S, GOAL_OPS_S = 300.0, 1000.0
FLOOR_P99_MS, GOAL_P99_MS = 100.0, 20.0
FLOOR_RATIO, GOAL_RATIO = 0.25, 0.50


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * q))]


async def _orchestrator_alone(home: Path, n: int, concurrency: int) -> float:
    """Submit → no-op done through the orchestrator only: workflows per second."""
    async with StateStore.open("mem://") as state:
        orch = Orchestrator(bench_settings(home), actions=load_actions(["noop"]), state=state)
        await orch.start()
        try:

            async def one(i: int) -> None:
                spec = WorkflowSpec.model_validate(bench_op(i).plan.workflow)
                await orch.submit(spec, workflow_id=f"op-{i:032x}")
                await orch.wait(f"op-{i:032x}", timeout_s=30)

            return await _closed_loop(n, concurrency, one)
        finally:
            await orch.stop()


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


async def _open_loop(plane: Plane, per_s: int, seconds: int) -> list[float]:
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
class Shape:
    """One deployment shape's figures: closed-loop throughput, open-loop latencies."""

    label: str
    per_s: float = 0.0
    cpu_ms: float = 0.0
    """CPU per op, both processes together where there are two."""
    latencies: list[float] = field(default_factory=list)


@dataclass
class Results:
    bare_per_s: float = 0.0
    bare_latencies: list[float] = field(default_factory=list)
    shapes: list[Shape] = field(default_factory=list)
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
        for kind in (Plane, SplitPlane):
            shape = Shape(kind.label)
            async with kind(fast / kind.__name__, server.url) as plane:
                await _closed_loop(100, 8, plane.one)  # warm-up
                cpu = plane.cpu_s()
                shape.per_s = await _closed_loop(N_THROUGHPUT, CONCURRENCY, plane.one)
                shape.cpu_ms = (plane.cpu_s() - cpu) / N_THROUGHPUT * 1e3
                shape.latencies = await _open_loop(plane, OFFERED_PER_S, LATENCY_SECONDS)
            results.shapes.append(shape)
        async with Plane(disk / "plane", server.url) as plane:
            results.disk_e2e_per_s = await _closed_loop(N_DISK, CONCURRENCY, plane.one)
        results.disk_orchestrator_per_s = await _orchestrator_alone(
            disk / "alone", N_DISK, CONCURRENCY
        )
    finally:
        server.stop()
    return results


def _ms(latencies: list[float]) -> tuple[str, str]:
    return f"{statistics.median(latencies) * 1e3:.1f}", f"{_pct(latencies, 0.99) * 1e3:.1f}"


def _bars(shape: Shape, bare_per_s: float) -> list[tuple[str, str, bool, bool]]:
    e2e, p99, ratio = shape.per_s, _pct(shape.latencies, 0.99) * 1e3, shape.per_s / bare_per_s
    where = f" ({shape.label})"
    return [
        (f"≥ {FLOOR_OPS_S:g} ops/s{where}", f"{e2e:,.0f}", e2e >= FLOOR_OPS_S, e2e >= GOAL_OPS_S),
        (
            f"p99 ≤ {FLOOR_P99_MS:g} ms at {OFFERED_PER_S}/s{where}",
            f"{p99:.1f} ms",
            p99 <= FLOOR_P99_MS,
            p99 <= GOAL_P99_MS,
        ),
        (
            f"≥ {FLOOR_RATIO:.0%} of the bare loop{where}",
            f"{ratio:.0%}",
            ratio >= FLOOR_RATIO,
            ratio >= GOAL_RATIO,
        ),
    ]


def main() -> int:
    shm = Path("/dev/shm")
    with (
        tempfile.TemporaryDirectory(prefix="prvng-bench-ops-") as disk,
        tempfile.TemporaryDirectory(
            prefix="prvng-bench-ops-", dir=shm if shm.is_dir() else None
        ) as fast,
    ):
        r = asyncio.run(run(Path(disk), Path(fast)))
    rows = [["bare publish → pull → ack", f"{r.bare_per_s:,.0f}", *_ms(r.bare_latencies), ""]]
    for shape in r.shapes:
        rows += [
            [
                f"ops end to end, {shape.label} ({N_THROUGHPUT} ops)",
                f"{shape.per_s:,.0f}",
                "",
                "",
                f"{shape.cpu_ms:.2f}",
            ],
            [
                f"ops at {OFFERED_PER_S}/s offered, {shape.label} ({len(shape.latencies)} ops)",
                "",
                *_ms(shape.latencies),
                "",
            ],
        ]
    rows += [
        [
            f"ops end to end, one process ({N_DISK} ops, journal on disk)",
            f"{r.disk_e2e_per_s:,.0f}",
            "",
            "",
            "",
        ],
        [
            f"orchestrator alone ({N_DISK} no-op workflows, journal on disk)",
            f"{r.disk_orchestrator_per_s:,.0f}",
            "",
            "",
            "",
        ],
    ]
    print_table(
        "Ops plane end to end (request → succeeded audit event) vs a bare JetStream loop "
        f"(nats store on disk, sync always; journal on tmpfs unless said), {CONCURRENCY} in flight",
        ["measurement", "ops/s", "p50 ms", "p99 ms", "CPU ms/op"],
        rows,
    )
    deployed = _bars(r.shapes[-1], r.bare_per_s)
    single = _bars(r.shapes[0], r.bare_per_s)
    print_table(
        f"Ops plane: bars (they decide on the deployed shape, {r.shapes[-1].label}; "
        "one process shown beside it)",
        ["bar", "measured", "verdict", "goal"],
        [[b, m, verdict(ok), "met" if goal else "not met"] for b, m, ok, goal in deployed + single],
    )
    return 0 if all(ok for _, _, ok, _ in deployed) else 1


if __name__ == "__main__":
    sys.exit(main())
