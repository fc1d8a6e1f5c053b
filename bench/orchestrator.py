"""The orchestrator engine: durable no-op tasks per second, recovery time and memory.

Rows: a chain of 1,000, a fan-out of 1,000 and layered diamonds, every task fsynced into
the journal (group commit) before it is acted on; recovery of a 10,000-task journal (and of
its snapshot); resident memory for 10,000 tasks, in a fresh subprocess. Baselines in the
same run: a bare fsync'd append loop (the disk's limit for one record at a time) and a bare
`asyncio.gather` of the same no-op action (the CPU's limit).
"""

from __future__ import annotations

import asyncio
import gc
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.common import print_table, verdict
from daemons.common.settings import PROJECT_ROOT, Settings
from daemons.orchestrator.actions import ActionContext, load_actions
from daemons.orchestrator.durability.journal import encode
from daemons.orchestrator.engine.records import RecordKind, SucceededRecord
from daemons.orchestrator.engine.service import Orchestrator
from daemons.orchestrator.model import WorkflowSpec

N = 1000
N_RECOVERY = 10_000
ROUNDS = 3
BAR_FANOUT_PER_S = 1000.0
BAR_RECOVERY_S = 2.0
BAR_MEMORY_MIB = 50.0


def _settings(home: Path) -> Settings:
    return Settings(home=home, config_dir=PROJECT_ROOT / "config", cache_dir=home / "cache")


def _noop(task_id: str, *deps: str) -> dict[str, Any]:
    return {"id": task_id, "action": "noop", "depends_on": list(deps)}


def chain(n: int) -> WorkflowSpec:
    tasks = [_noop(f"t{i}", *([f"t{i - 1}"] if i else [])) for i in range(n)]
    return WorkflowSpec.model_validate({"name": "chain", "tasks": tasks})


def fan_out(n: int) -> WorkflowSpec:
    tasks = [_noop("root")] + [_noop(f"t{i}", "root") for i in range(n - 1)]
    return WorkflowSpec.model_validate({"name": "fan-out", "tasks": tasks})


def diamonds(n: int, width: int = 4) -> WorkflowSpec:
    """join0 → (width branches) → join1 → ... : layers of diamonds, about `n` tasks."""
    tasks = [_noop("join0")]
    layer = 0
    while len(tasks) + width + 1 <= n:
        branches = [f"d{layer}b{i}" for i in range(width)]
        tasks += [_noop(b, f"join{layer}") for b in branches]
        tasks.append(_noop(f"join{layer + 1}", *branches))
        layer += 1
    return WorkflowSpec.model_validate({"name": "diamonds", "tasks": tasks})


# ---- baselines ---------------------------------------------------------------------------


def fsync_loop(directory: Path, n: int) -> float:
    """Records per second, each written and fdatasynced on its own."""
    record: SucceededRecord = {
        "s": 1,
        "k": RecordKind.SUCCEEDED,
        "task": "t123",
        "n": 1,
        "at": time.time(),
    }
    line = encode(record)
    fd = os.open(directory / "bare.journal", os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    try:
        start = time.perf_counter()
        for _ in range(n):
            os.write(fd, line)
            os.fdatasync(fd)
        return n / (time.perf_counter() - start)
    finally:
        os.close(fd)


async def gather_noops(settings: Settings, n: int) -> float:
    """No-op action runs per second with no engine at all."""
    action = load_actions(["noop"])["noop"]
    params = action.params_model.model_validate({})
    ctx = ActionContext("wf", "t", 1, "wf/t/1", settings.home, settings, lambda s, t: None)
    start = time.perf_counter()
    await asyncio.gather(*(action.run(params, ctx) for _ in range(n)))
    return n / (time.perf_counter() - start)


# ---- the engine --------------------------------------------------------------------------


async def tasks_per_second(orch: Orchestrator, spec: WorkflowSpec) -> tuple[float, float]:
    """`(tasks/s, journal records per fsync batch)` for one run of `spec`, submit to done."""
    committer = orch.engine.committer
    batches, records = committer.batches, committer.records
    start = time.perf_counter()
    submitted = await orch.submit(spec)
    done = await orch.wait(submitted.id, 120)
    elapsed = time.perf_counter() - start
    assert done.state == "succeeded", done
    per_batch = (committer.records - records) / max(1, committer.batches - batches)
    return len(spec.tasks) / elapsed, per_batch


async def recovery(settings: Settings) -> tuple[float, float, int]:
    """Seconds to start on a 10,000-task journal (replay) and on its snapshot, and records."""
    tasks = [_noop(f"t{i}") for i in range(N_RECOVERY - 1)]
    tasks.append({"id": "last", "action": "sleep", "params": {"seconds": 3600}})
    spec = WorkflowSpec.model_validate({"name": "recovery", "tasks": tasks})
    actions = load_actions(["noop", "sleep"])
    orch = Orchestrator(settings, actions=actions, checkpoint_every=10**9)
    await orch.start()
    submitted = await orch.submit(spec)
    async for event in orch.events(since=0, workflow_id=submitted.id):
        if event.task_id == "last" and event.state == "running":
            break
    await orch.stop(grace_s=0)  # "last" stays running: the journal holds everything
    journal = settings.journal_dir / f"{submitted.id}.journal"
    records = sum(1 for _ in journal.open("rb"))

    replayed = Orchestrator(settings, actions=actions)
    start = time.perf_counter()
    await replayed.start()
    replay_s = time.perf_counter() - start
    await replayed.cancel(submitted.id)
    await replayed.wait(submitted.id, 60)  # finished: compacted into a snapshot
    await replayed.stop(grace_s=0)

    loaded = Orchestrator(settings, actions=actions)
    start = time.perf_counter()
    await loaded.start()
    snapshot_s = time.perf_counter() - start
    await loaded.stop()
    return replay_s, snapshot_s, records


def _rss_bytes() -> int:
    with Path("/proc/self/statm").open() as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


async def _memory_probe(home: Path) -> dict[str, int]:
    """RSS before and after a 10,000-task workflow is submitted and done (run in a subprocess)."""
    orch = Orchestrator(_settings(home), actions=load_actions(["noop"]))
    await orch.start()
    warm = await orch.submit(fan_out(100))  # warm up code paths and caches
    await orch.wait(warm.id, 60)
    gc.collect()
    before = _rss_bytes()
    submitted = await orch.submit(fan_out(N_RECOVERY))
    await orch.wait(submitted.id, 120)
    gc.collect()
    after = _rss_bytes()
    await orch.stop()
    return {"before": before, "after": after}


def memory(home: Path) -> float:
    """MiB of extra resident memory for 10,000 tasks, measured in a fresh interpreter."""
    code = (
        "import asyncio, json, pathlib, sys; from bench.orchestrator import _memory_probe; "
        "print(json.dumps(asyncio.run(_memory_probe(pathlib.Path(sys.argv[1])))))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code, str(home)],
        check=True,
        capture_output=True,
        text=True,
        cwd=PROJECT_ROOT,
    )
    probe = json.loads(out.stdout.strip().splitlines()[-1])
    return (probe["after"] - probe["before"]) / (1 << 20)


# ---- the run -----------------------------------------------------------------------------


async def run(root: Path) -> dict[str, float]:
    results: dict[str, float] = {}
    settings = _settings(root / "engine")
    results["fsync"] = fsync_loop(root, N)
    results["gather"] = max([await gather_noops(settings, N) for _ in range(ROUNDS)])
    orch = Orchestrator(settings, actions=load_actions(["noop"]))
    await orch.start()
    try:
        await tasks_per_second(orch, fan_out(200))  # warm-up
        for name, make in (("chain", chain), ("fan-out", fan_out), ("diamonds", diamonds)):
            runs = [await tasks_per_second(orch, make(N)) for _ in range(ROUNDS)]
            best = max(runs)
            results[name], results[f"{name} batch"] = best
    finally:
        await orch.stop()
    results["replay"], results["snapshot"], results["records"] = await recovery(
        _settings(root / "recovery")
    )
    return results


def report(r: dict[str, float]) -> bool:
    fsync, gather = r["fsync"], r["gather"]
    rows = [
        ["bare fsync'd append loop (disk)", f"{fsync:,.0f} records/s", "1", "1.00x", "-"],
        ["bare asyncio.gather no-ops (CPU)", f"{gather:,.0f} tasks/s", "-", "-", "1.00x"],
    ]
    for name in ("chain", "fan-out", "diamonds"):
        rate = r[name]
        rows.append(
            [
                f"engine {name} of {N:,} (durable)",
                f"{rate:,.0f} tasks/s",
                f"{r[f'{name} batch']:.1f}",
                f"{2 * rate / fsync:.2f}x",
                f"{gather / rate:,.0f}x",
            ]
        )
    print_table(
        "Orchestrator: durable no-op throughput (2 fsynced journal records per task)",
        ["measurement", "rate", "records/fsync", "records/s vs disk", "time/task vs CPU"],
        rows,
    )
    overhead_us = (1 / r["fan-out"] - 1 / gather) * 1e6
    print_table(
        "Orchestrator: scheduling, recovery, memory",
        ["measurement", "value"],
        [
            ["scheduling + journaling overhead per task (fan-out)", f"{overhead_us:,.0f} µs"],
            [f"recovery: replay a {N_RECOVERY:,}-task journal", f"{r['replay']:.3f} s"],
            ["  (journal records replayed)", f"{r['records']:,.0f}"],
            [f"recovery: load a {N_RECOVERY:,}-task snapshot", f"{r['snapshot']:.3f} s"],
            [f"extra resident memory for {N_RECOVERY:,} tasks", f"{r['memory']:.1f} MiB"],
        ],
    )
    bars = [
        (
            f"fan-out ≥ {BAR_FANOUT_PER_S:,.0f} durable tasks/s",
            f"{r['fan-out']:,.0f}",
            r["fan-out"] >= BAR_FANOUT_PER_S,
        ),
        (
            f"recovery of {N_RECOVERY:,} tasks ≤ {BAR_RECOVERY_S:g} s",
            f"{max(r['replay'], r['snapshot']):.3f} s",
            max(r["replay"], r["snapshot"]) <= BAR_RECOVERY_S,
        ),
        (
            f"memory for {N_RECOVERY:,} tasks ≤ {BAR_MEMORY_MIB:g} MiB",
            f"{r['memory']:.1f} MiB",
            r["memory"] <= BAR_MEMORY_MIB,
        ),
    ]
    print_table(
        "Orchestrator: bars",
        ["bar", "measured", "verdict"],
        [[b, m, verdict(ok)] for b, m, ok in bars],
    )
    return all(ok for _, _, ok in bars)


def main() -> int:
    with tempfile.TemporaryDirectory(prefix="prvng-bench-orch-") as tmp:
        root = Path(tmp)
        results = asyncio.run(run(root))
        results["memory"] = memory(root / "memory")
    return 0 if report(results) else 1


if __name__ == "__main__":
    sys.exit(main())
